using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using CityGateway.Tests.Integration;

namespace CityGateway.Tests.Dashboards;

/// <summary>
/// A real gateway on the shared broker and InfluxDB (own database, one serial port on a pty pair), fed by a
/// seeded fleet of all domains and formats; plus a device that went silent 20 minutes ago and a few
/// shared and partner points written directly (the exchange release flow is tested elsewhere).
/// </summary>
public sealed class CityDataSet : IAsyncDisposable
{
    public const string SilentDevice = "env-silent-0001";

    private readonly TempDir _dir;
    private readonly PtyPair _pty;

    private CityDataSet(ServicesFixture services, TempDir dir, PtyPair pty, GatewayRunner gateway, string database, List<PublishedMessage> published)
    {
        Services = services;
        _dir = dir;
        _pty = pty;
        Gateway = gateway;
        Database = database;
        Published = published;
    }

    public ServicesFixture Services { get; }

    public GatewayRunner Gateway { get; }

    public string Database { get; }

    public IReadOnlyList<PublishedMessage> Published { get; }

    public string Instance => "dash-" + Database[^6..];

    public static async Task<CityDataSet> StartAsync(ServicesFixture services, string prefix)
    {
        var dir = new TempDir("dash");
        var pty = new PtyPair();
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 8,
            WaterDevices = 12,
            EnvironmentDevices = 12,
            MessagesPerDevice = 10,
            Rate = 2000,
            Seed = 20261122,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase(prefix);
        var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, options.RegistryPath,
            [.. SerialIngestionTests.PortArgs(pty.GatewayEnd, "kv", "Optional"), "--Gateway:SelfMetrics:InstanceId=dash-" + db[^6..]]);
        var published = new ConcurrentQueue<PublishedMessage>();
        CityDataSet set;
        try
        {
            var report = await FleetSimulator.RunAsync(options, published.Enqueue);
            Assert.Equal(report.Published, report.Acknowledged);
            set = new CityDataSet(services, dir, pty, gateway, db, [.. published]);
            foreach (var domain in DeviceTypes.Domains)
                await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, domain, "seq") >= report.ExpectedPoints[domain],
                    TimeSpan.FromSeconds(30), () => $"{domain}: not all points stored; quarantined {gateway.Quarantine.Total}");

            // One frame for a device the registry does not know: a quarantine series with tag reason.
            using (var publisher = await Publisher.ConnectAsync(services.Broker.Url))
            {
                publisher.Publish("city/json/environment/env-unknown-9999", $"{{\"device\":\"env-unknown-9999\",\"ts\":{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()},\"pm25\":3}}");
                await publisher.FlushAsync();
            }
            await Wait.UntilAsync(() => gateway.Quarantine.Total >= 1, TimeSpan.FromSeconds(15), () => "nothing quarantined");

            // A device that reported 40 to 20 minutes ago and then went silent.
            var now = DateTimeOffset.UtcNow;
            var lines = new StringBuilder();
            for (int m = 40; m >= 20; m -= 2)
                lines.Append($"environment,city=lumen,district=harbour,site=quay-1,device={SilentDevice} pm25=8.5,no2=12.0,seq={41 - m}i {Ns(now.AddMinutes(-m))}\n");
            // What the city released to a partner and what a partner released to us (windows of 15 minutes).
            var window = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute / 15 * 15, 0, TimeSpan.Zero).AddMinutes(-15);
            foreach (var district in new[] { "centre", "harbour", "north" })
            {
                lines.Append($"shared,partner=harbour-city,district={district},domain=environment,metric=pm25,aggregate=mean value=11.2 {Ns(window)}\n");
                lines.Append($"shared,partner=harbour-city,district={district},domain=traffic,metric=intensity,aggregate=sum value=840 {Ns(window)}\n");
                lines.Append($"partner,city=harbour-city,district=port-{district},domain=environment,metric=pm25,aggregate=mean value=13.7 {Ns(window)}\n");
                lines.Append($"partner,city=harbour-city,district=port-{district},domain=traffic,metric=intensity,aggregate=sum value=1210 {Ns(window)}\n");
            }
            await set.WriteAsync(lines.ToString());

            // Self-metrics every second: enough points for a derivative over 5 s buckets; the serial port has been read.
            await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "gateway", "received") >= 12
                                              && await services.Influx.CountAsync(db, "gateway", "serial_open") >= 2
                                              && await services.Influx.CountAsync(db, "gateway", "quarantined", "\"reason\" != ''") >= 2,
                TimeSpan.FromSeconds(30), () => "not enough gateway self-metrics points");
        }
        catch
        {
            await gateway.DisposeAsync();
            pty.Dispose();
            dir.Dispose();
            throw;
        }
        return set;
    }

    public static long Ns(DateTimeOffset t) => t.ToUnixTimeMilliseconds() * 1_000_000;

    /// <summary>Writes line protocol straight to InfluxDB (as another writer than the gateway would).</summary>
    public async Task WriteAsync(string lines)
    {
        using var client = Services.Influx.Client(Database);
        var result = await client.WriteAsync(Encoding.UTF8.GetBytes(lines), CancellationToken.None);
        Assert.True(result.Outcome == CityGateway.Storage.Influx.WriteOutcome.Accepted, $"write refused: {result.StatusCode} {result.Message}\n{lines}");
    }

    public sealed record Series(string Name, IReadOnlyDictionary<string, string> Tags, IReadOnlyList<string> Columns, IReadOnlyList<JsonElement[]> Rows)
    {
        /// <summary>The last non-null number in the value columns (Grafana's reduce "last" with drop non-numeric).</summary>
        public double? LastValue()
        {
            for (int r = Rows.Count - 1; r >= 0; r--)
                for (int c = 0; c < Columns.Count; c++)
                    if (Columns[c] != "time" && Rows[r][c].ValueKind == JsonValueKind.Number) return Rows[r][c].GetDouble();
            return null;
        }

        public bool HasValue => Rows.Any(row => row.Where((_, i) => Columns[i] != "time").Any(v => v.ValueKind is not JsonValueKind.Null));

        public override string ToString() => $"{Name} {{{string.Join(", ", Tags.Select(t => t.Key + "=" + t.Value))}}} last={LastValue()?.ToString(CultureInfo.InvariantCulture) ?? "-"}";
    }

    /// <summary>Runs an InfluxQL query through the query endpoint and returns every series of its first statement.</summary>
    public async Task<List<Series>> QueryAsync(string influxQl)
    {
        using var client = Services.Influx.Client(Database);
        using var doc = await client.QueryAsync(influxQl, Database);
        var list = new List<Series>();
        var result = doc.RootElement.GetProperty("results")[0];
        if (!result.TryGetProperty("series", out var series)) return list;
        foreach (var s in series.EnumerateArray())
        {
            var tags = s.TryGetProperty("tags", out var t) ? t.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "") : [];
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToList();
            var rows = s.TryGetProperty("values", out var v) ? v.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.Clone()).ToArray()).ToList() : [];
            list.Add(new Series(s.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "", tags, columns, rows));
        }
        return list;
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        _pty.Dispose();
        _dir.Dispose();
    }
}
