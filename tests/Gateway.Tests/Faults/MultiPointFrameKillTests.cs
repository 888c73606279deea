using System.Diagnostics;
using System.Text;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// Frames that carry many points (a SenML pack with twenty devices) and batches smaller than a
/// multiple of them, so that nearly every batch ends inside a frame; kill -9 while a backlog is
/// being written, restart, repeat. The journal may only forget a frame once every one of its points
/// is stored: every point of every acknowledged message must arrive.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class MultiPointFrameKillTests(ServicesFixture services, ITestOutputHelper output)
{
    private const int Devices = 20;

    [Fact]
    public async Task Frames_whose_points_straddle_batches_lose_no_point_over_kills_and_restarts()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("GATEWAY_FAULT_KILLS"), out var k) && k > 0 ? Math.Max(k, 6) : 6;
        using var dir = new TempDir("straddle");
        var devices = Enumerable.Range(1, Devices).Select(i => $"env-{i:D4}").ToArray();
        var registry = Registries.Write(Registries.Environment(devices), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("straddle");
        // 64 points a batch and 20 a frame: three of every four batches end inside a frame.
        await using var gateway = new GatewayProcess(services.Broker.Url, services.Influx.Url, db, registry, dir.Path,
            "--Gateway:Influx:BatchSize=64", "--Gateway:Influx:Gzip=false",
            // A concentrator's packs speak for many devices: a route whose topic names the
            // concentrator, not a device.
            "--Gateway:Routes:4:Filter=city/packs/#", "--Gateway:Routes:4:Format=senml",
            "--Gateway:Routes:4:Topic=city/packs/{domain}/{gateway}");
        await gateway.StartAsync();

        using var pub = await Publisher.ConnectAsync(services.Broker.Url);
        using var stop = new CancellationTokenSource();
        long published = 0;
        // Faster than 64-point batches can be written, so a backlog (and a batch ending mid-frame)
        // is there whenever the kill lands.
        var publishing = Task.Run(async () =>
        {
            var sw = Stopwatch.StartNew();
            while (!stop.IsCancellationRequested)
            {
                long due = (long)(sw.Elapsed.TotalSeconds * 800);
                while (published < due) pub.Publish("city/packs/environment/concentrator-1", Pack(published++));
                await Task.Delay(5);
            }
        });

        var random = new Random(kills);
        for (int i = 0; i < kills; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1200 + random.Next(800)));
            gateway.Kill();
            await gateway.StartAsync();
        }
        stop.Cancel();
        await publishing;
        await pub.FlushAsync();

        Dictionary<string, long> stored = [];
        long previousTotal = -1;
        var wait = Stopwatch.StartNew();
        // Settled: every device complete, or two checks a second apart agree and time is up.
        while (true)
        {
            var rows = await services.Influx.RowsAsync(db, "SELECT count(distinct(\"seq\")) AS d FROM \"environment\" GROUP BY \"device\"");
            stored = rows.ToDictionary(r => r["device"].GetString()!, r => r["d"].GetInt64());
            long total = stored.Values.Sum();
            if (total == published * Devices || (total == previousTotal && wait.Elapsed > TimeSpan.FromSeconds(60))) break;
            previousTotal = total;
            await Task.Delay(1000);
        }
        long lost = devices.Sum(d => published - stored.GetValueOrDefault(d));
        output.WriteLine($"{kills} kills, {gateway.Starts} starts: {published} packs of {Devices} points published and acknowledged, " +
                         $"{stored.Values.Sum()} of {published * Devices} points stored, {lost} lost");
        Assert.Equal(0, lost);
        Assert.All(devices, d => Assert.Equal(published, stored.GetValueOrDefault(d)));
    }

    /// <summary>One SenML pack: a record pair (sequence number, PM2.5) for each of the twenty devices.</summary>
    private static byte[] Pack(long seq)
    {
        var sb = new StringBuilder("[");
        for (int i = 1; i <= Devices; i++)
        {
            if (i > 1) sb.Append(',');
            sb.Append($"{{\"bn\":\"urn:dev:aq:env-{i:D4}:\",\"n\":\"seq\",\"v\":{seq}}},{{\"n\":\"pm25\",\"v\":{10 + i}}}");
        }
        return Encoding.UTF8.GetBytes(sb.Append(']').ToString());
    }
}
