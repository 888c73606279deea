using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>
/// A second city's fleet that "was offline" for half an hour: through the real mosquitto and the
/// gateway into the real InfluxDB, every backfilled reading is stored at its own past timestamp,
/// tagged with the city's own districts, and the devices then carry on live.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class BackfillIngestionTests(ServicesFixture services)
{
    [Fact]
    public async Task Backfilled_readings_are_published_in_time_order_and_stored_at_their_own_timestamps()
    {
        using var dir = new TempDir("backfill");
        string[] districts = ["quay", "uplands", "mill-lane"];
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            City = "sister",
            Districts = [.. districts],
            CentreLatitude = -33.92,
            CentreLongitude = 18.42,
            TrafficDevices = 3,
            WaterDevices = 3,
            EnvironmentDevices = 4,
            Backfill = TimeSpan.FromMinutes(30),
            BackfillInterval = TimeSpan.FromMinutes(1),
            // Live publishes at QoS 0; the backfill keeps its own QoS 1.
            Qos = 0,
            MessagesPerDevice = 2,
            Rate = 1000,
            Seed = 909,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("backfill");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, options.RegistryPath);

        var published = new List<PublishedMessage>();
        var report = await FleetSimulator.RunAsync(options, published.Add);

        const int devices = 10, perDevice = 30, backfilled = devices * perDevice;
        Assert.Equal(backfilled, report.Backfilled);
        Assert.Equal(backfilled + devices * 2, report.Published);
        Assert.Equal(0, report.Failed);
        // Only the backfilled publishes were at QoS 1, and the broker acknowledged each of them.
        Assert.Equal(backfilled, report.Acknowledged);
        Assert.NotNull(report.BackfillFrom);
        var from = report.BackfillFrom!.Value;
        var to = report.BackfillTo!.Value;
        Assert.Equal(TimeSpan.FromMinutes(30), to - from);
        Assert.Equal(60, report.BackfillIntervalSeconds);

        // The backfill comes first, in time order, spread evenly over [from, to): one message every 6 s
        // across the fleet, one every minute per device.
        var backfill = published.Take(backfilled).ToList();
        long fromMs = from.ToUnixTimeMilliseconds(), toMs = to.ToUnixTimeMilliseconds();
        for (int i = 0; i < backfill.Count; i++)
        {
            long ms = backfill[i].TimestampNs / 1_000_000;
            Assert.Equal(fromMs + i * 6_000L, ms);
            Assert.True(ms < toMs);
        }
        foreach (var device in backfill.GroupBy(m => m.Device))
        {
            Assert.Equal(perDevice, device.Count());
            Assert.Equal(Enumerable.Range(1, perDevice).Select(n => (long)n), device.Select(m => m.Sequence));
            var times = device.Select(m => m.TimestampNs / 1_000_000).ToList();
            Assert.All(times.Zip(times.Skip(1)), p => Assert.Equal(60_000L, p.Second - p.First));
        }
        // The devices then carry on live: later timestamps, the sequence continues.
        var live = published.Skip(backfilled).ToList();
        Assert.Equal(devices * 2, live.Count);
        Assert.All(live, m => Assert.True(m.TimestampNs / 1_000_000 >= toMs, $"{m} at {m.TimestampNs}"));
        Assert.All(live, m => Assert.InRange(m.Sequence, perDevice + 1, perDevice + 2));

        // The backfill is the generator's output for the window, byte for byte, values included:
        // the daily curves were evaluated at each reading's own timestamp.
        var expected = FleetSimulator.Generate(new SimulatorOptions
        {
            BrokerUrl = options.BrokerUrl, City = options.City, Districts = options.Districts,
            CentreLatitude = options.CentreLatitude, CentreLongitude = options.CentreLongitude,
            TrafficDevices = 3, WaterDevices = 3, EnvironmentDevices = 4, Seed = options.Seed, Duration = TimeSpan.FromMinutes(30),
        }, from, TimeSpan.FromSeconds(6)).ToList();
        Assert.Equal(expected.Select(m => (m.Topic, Convert.ToBase64String(m.Payload))), backfill.Select(m => (m.Topic, Convert.ToBase64String(m.Payload))));

        // The gateway stores every reading, the backfilled ones at their own past timestamps.
        long stored = 0;
        await Wait.UntilAsync(async () =>
        {
            stored = 0;
            foreach (var domain in Faults.Delivery.Measurements) stored += await services.Influx.CountAsync(db, domain, "seq");
            return stored >= report.Published;
        }, TimeSpan.FromSeconds(60), () => $"stored {stored} of {report.Published}; quarantined {gateway.Quarantine.Total}");
        Assert.Equal(0, gateway.Quarantine.Total);
        long before = 0;
        foreach (var domain in Faults.Delivery.Measurements)
            before += await services.Influx.CountAsync(db, domain, "seq", $"time < {toMs * 1_000_000}");
        Assert.Equal(backfilled, before);

        foreach (var device in published.GroupBy(m => (m.Domain, m.Device)))
        {
            var rows = await services.Influx.RowsAsync(db,
                $"SELECT seq, city, district FROM \"{device.Key.Domain}\" WHERE \"device\" = '{device.Key.Device}'");
            Assert.Equal(device.Select(m => (m.TimestampNs, m.Sequence)).Order(),
                rows.Select(r => (r["time"].GetInt64(), r["seq"].GetInt64())).Order());
            Assert.All(rows, r => Assert.Equal("sister", r["city"].GetString()));
            Assert.All(rows, r => Assert.Contains(r["district"].GetString(), districts));
        }
    }
}
