using System.Collections.Concurrent;
using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>
/// A seeded fleet of all three domains in all four formats through the real mosquitto into the
/// real InfluxDB: exactly the expected points per measurement, canonical names, converted units.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class FleetIngestionTests(ServicesFixture services)
{
    [Fact]
    public async Task Seeded_fleet_in_all_formats_arrives_with_canonical_names_and_units()
    {
        using var dir = new TempDir("fleet");
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 8,
            WaterDevices = 8,
            EnvironmentDevices = 12,
            MessagesPerDevice = 15,
            Rate = 2000,
            Seed = 20261121,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("fleet");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, options.RegistryPath);

        var published = new ConcurrentBag<PublishedMessage>();
        var report = await FleetSimulator.RunAsync(options, published.Add);

        int devices = 8 + 8 + 12;
        Assert.Equal(devices * 15, report.Published);
        Assert.Equal(report.Published, report.Acknowledged);
        Assert.Equal(["chirpstack", "json", "senml", "tts"], report.ByFormat.Keys.Order());
        foreach (var domain in new[] { "traffic", "water", "environment" })
        {
            long expected = report.ExpectedPoints[domain];
            Assert.True(expected > 0);
            await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, domain, "seq") >= expected,
                TimeSpan.FromSeconds(60),
                () => $"{domain}: {services.Influx.CountAsync(db, domain, "seq").Result} of {expected} points stored; quarantined {gateway.Quarantine.Total}");
        }
        // Everything published has been received and processed: now the counts must be exact.
        await Wait.UntilAsync(() => gateway.Metrics.Received >= report.Published && gateway.Metrics.QueueDepth() == 0,
            TimeSpan.FromSeconds(30), () => $"received {gateway.Metrics.Received} of {report.Published}");
        foreach (var domain in new[] { "traffic", "water", "environment" })
            Assert.Equal(report.ExpectedPoints[domain], await services.Influx.CountAsync(db, domain, "seq"));
        Assert.Equal(0, gateway.Quarantine.Total);

        // Every device stored every sequence number once.
        foreach (var (device, count) in report.ByDevice)
        {
            var domain = published.First(m => m.Device == device).Domain;
            Assert.Equal(count, await services.Influx.CountAsync(db, domain, "seq", $"\"device\" = '{device}'"));
        }

        // Spot-check converted values: one message of each device type in each format.
        var samples = published.GroupBy(m => (m.DeviceType, m.Format)).Select(g => g.OrderBy(m => m.Sequence).Last()).ToList();
        Assert.True(samples.Select(s => s.Format).Distinct().Count() == 4, "every format is represented in the samples");
        foreach (var m in samples)
        {
            var rows = await services.Influx.RowsAsync(db, $"SELECT * FROM \"{m.Domain}\" WHERE \"device\" = '{m.Device}' AND time = {m.TimestampNs}");
            if (rows.Count != 1)
            {
                var times = await services.Influx.RowsAsync(db, $"SELECT seq FROM \"{m.Domain}\" WHERE \"device\" = '{m.Device}'");
                Assert.Fail($"{m.Format} {m.DeviceType} {m.Device} seq {m.Sequence} at {m.TimestampNs}: {rows.Count} rows; stored: " +
                            string.Join(", ", times.Select(t => $"{t["seq"]}@{t["time"]}")));
            }
            var row = rows[0];
            Assert.Equal("lumen", row["city"].GetString());
            Assert.False(string.IsNullOrEmpty(row["district"].GetString()));
            Assert.False(string.IsNullOrEmpty(row["site"].GetString()));
            ExpectedConversions.AssertRow(m.SourceValues, row, $"{m.Format} {m.DeviceType}");
            foreach (var (tag, value) in m.Tags) Assert.Equal(value, row[tag].GetString());
        }

        // The gateway's own counters are in InfluxDB too.
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "gateway", "received") > 0,
            TimeSpan.FromSeconds(15), () => "no gateway self-metrics point");
    }
}
