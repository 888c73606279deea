using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CityGateway.Normalisation;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks;

/// <summary>
/// Publish-to-queryable delay under a steady load: the gateway as its own process with its default
/// settings, a publisher paced at a fixed rate (QoS 1, flat JSON from a simulated fleet), and among
/// those messages markers from a few marker devices, each carrying a number and its publish time
/// kept by the publisher. A poller asks InfluxDB every few tens of milliseconds for markers newer
/// than the oldest one not yet seen and notes when each first shows up. Medians over several runs.
/// </summary>
internal static class LatencyBenchmark
{
    private const double TargetP99Ms = 300;
    private const string MarkerType = "bench-marker";
    private const string MarkerSite = "latency-marker";

    private sealed record Settings(int Rate, int Seconds, int WarmupSeconds, int MarkersPerSecond, int MarkerDevices, int PollMs, int Devices);

    private sealed record Result(int FlushIntervalMs, int Markers, int Lost, double P50, double P95, double P99, double Max,
        double[] Delays, double QueryMs, double PublishRate, double MaxLagMs, double GatewayCpuShare, double InfluxCpuShare, long Batches,
        long Stored, long Expected);

    public static async Task<int> RunAsync(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        var s = new Settings(
            Rate: args.GetValue<int>("--rate"),
            Seconds: args.GetValue<int>("--seconds"),
            WarmupSeconds: args.GetValue<int>("--warmup"),
            MarkersPerSecond: args.GetValue<int>("--markers"),
            MarkerDevices: 10,
            PollMs: args.GetValue<int>("--poll-ms"),
            Devices: args.GetValue<int>("--devices"));
        var flushSettings = FlushSettings(args.GetValue<string>("--flush-ms"));
        if (flushSettings is null)
        {
            Console.Error.WriteLine("--flush-ms takes a comma-separated list of milliseconds, e.g. --flush-ms 1000,200");
            return 2;
        }
        int defaultFlush = GatewayDefaults.FlushIntervalMs;
        Console.WriteLine($"latency: {s.Rate} msg/s (QoS 1, flat JSON, {s.Devices} devices) for {s.WarmupSeconds} s warm-up + {s.Seconds} s measured; " +
                          $"{s.MarkersPerSecond} markers/s from {s.MarkerDevices} marker devices; InfluxDB polled every {s.PollMs} ms; " +
                          $"gateway defaults (Gateway:Influx:FlushIntervalMs = {defaultFlush}, BatchSize = {new Storage.Influx.InfluxOptions().BatchSize})");
        using var influx = new InfluxServer();
        using var dir = new TempDir("bench-latency");
        Console.WriteLine($"before: {Machine.Load()}");
        var results = new List<Result>();
        for (int run = 1; run <= runs; run++)
        {
            foreach (var flush in flushSettings.Count == 0 ? [defaultFlush] : flushSettings)
            {
                var r = await RunOnceAsync(influx, dir, run, s, flush, flush == defaultFlush ? null : flush);
                results.Add(r);
                Console.WriteLine($"run {run} {Label(r.FlushIntervalMs, defaultFlush),-30} {r.Markers - r.Lost,4} markers: " +
                                  $"p50 {r.P50,5:F0}  p95 {r.P95,5:F0}  p99 {r.P99,5:F0}  max {r.Max,5:F0} ms" +
                                  (r.Lost > 0 ? $"  ({r.Lost} never seen)" : "") +
                                  $"; published {r.PublishRate:F0} msg/s (largest lag {r.MaxLagMs:F0} ms), stored {r.Stored} of {r.Expected}; " +
                                  $"{r.Batches} writes; CPU (share of one core) gateway {r.GatewayCpuShare:P0}, influxd {r.InfluxCpuShare:P0}; query {r.QueryMs:F1} ms");
            }
        }
        Console.WriteLine($"after: {Machine.Load()}");
        Console.WriteLine();
        Console.WriteLine($"publish-to-queryable delay, medians over {runs} run(s) ({Environment.ProcessorCount} cores, mosquitto, influxd, gateway and publisher on one host):");
        foreach (var g in results.GroupBy(r => r.FlushIntervalMs))
        {
            var pooled = g.SelectMany(r => r.Delays).Order().ToArray();
            double p99 = Stats.Median(g.Select(r => r.P99));
            int lost = g.Sum(r => r.Lost);
            Console.WriteLine($"  {Label(g.Key, defaultFlush),-30} p50 {Stats.Median(g.Select(r => r.P50)),5:F0}  p95 {Stats.Median(g.Select(r => r.P95)),5:F0}  " +
                              $"p99 {p99,5:F0}  max {Stats.Median(g.Select(r => r.Max)),5:F0} ms   " +
                              $"(all {pooled.Length} markers pooled: p50 {Stats.Percentile(pooled, 50):F0}, p95 {Stats.Percentile(pooled, 95):F0}, " +
                              $"p99 {Stats.Percentile(pooled, 99):F0}, max {Stats.Percentile(pooled, 100):F0} ms)   " +
                              $"target p99 <= {TargetP99Ms:F0} ms: {Stats.Verdict(p99 <= TargetP99Ms && lost == 0)}" +
                              (lost > 0 ? $" ({lost} markers never seen)" : ""));
        }
        double queryMs = Stats.Median(results.Select(r => r.QueryMs));
        Console.WriteLine($"resolution: a marker counts as queryable when the first query that returns it answers; it became queryable after the " +
                          $"previous query, so a figure can be high by up to one poll interval plus a query ({s.PollMs} + {queryMs:F0} ms).");
        return 0;
    }

    private static string Label(int flush, int defaultFlush) =>
        $"FlushIntervalMs={flush}{(flush == defaultFlush ? " (default)" : "")}";

    /// <summary>--flush-ms 1000,200 runs each run once per setting; without it, the default only.</summary>
    private static List<int>? FlushSettings(string? text)
    {
        if (text is null) return [];
        var list = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part == "default") list.Add(GatewayDefaults.FlushIntervalMs);
            else if (int.TryParse(part, out var v) && v > 0) list.Add(v);
            else return null;
        }
        return list.Count > 0 ? list : null;
    }

    private static async Task<Result> RunOnceAsync(InfluxServer influx, TempDir dir, int run, Settings s, int flush, int? flushOverride)
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, $"run{run}-flush{flush}")).FullName;
        var database = $"latency{run}f{flush}";
        int perDomain = s.Devices / 3;
        var fleetOptions = new SimulatorOptions
        {
            TrafficDevices = s.Devices - 2 * perDomain, WaterDevices = perDomain, EnvironmentDevices = perDomain,
            Formats = ["json"], Seed = run,
        };
        var registry = FleetSimulator.BuildRegistry(fleetOptions);
        registry.DeviceTypes[MarkerType] = new DeviceTypeEntry
        {
            Domain = "environment",
            Fields = { ["marker"] = new FieldMapping { Metric = "marker", Custom = true, Type = "integer" } },
        };
        var markerDevices = Enumerable.Range(1, s.MarkerDevices).Select(i => $"mrk-{i:D2}").ToArray();
        foreach (var m in markerDevices) registry.Devices[m] = new DeviceEntry { Type = MarkerType, District = "centre", Site = MarkerSite };
        var registryPath = Path.Combine(folder, "devices.json");
        FleetSimulator.WriteRegistry(registry, registryPath);

        // A broker per run: the persistent sessions of earlier gateways would otherwise keep queueing.
        using var broker = new MosquittoBroker();
        string[] extra = [.. GatewayDefaults.Arguments(flushOverride)];
        await using var gateway = new GatewayProcess(broker.Url, influx.Url, database, registryPath, folder, extra);
        await gateway.StartAsync();
        using var publisher = await Publisher.ConnectAsync(broker.Url);

        long warmupSlots = (long)s.Rate * s.WarmupSeconds;
        long totalSlots = warmupSlots + (long)s.Rate * s.Seconds;
        int every = Math.Max(1, s.Rate / s.MarkersPerSecond);
        int markerCount = (int)((totalSlots - warmupSlots + every - 1) / every);
        var published = new long[markerCount];     // Stopwatch timestamp of each marker's publish
        var publishedMs = new long[markerCount];   // its device time (Unix ms), for the query's time bound
        var seen = new long[markerCount];          // Stopwatch timestamp of the answer that first held it
        long publishedMarkers = 0;
        long loadMessages = 0;

        using var load = FleetSimulator.Generate(fleetOptions, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(1.0 / s.Rate)).GetEnumerator();
        var payload = new byte[256];
        var pacer = new Pacer(s.Rate, totalSlots, k =>
        {
            if (k >= warmupSlots && (k - warmupSlots) % every == 0)
            {
                int m = (int)((k - warmupSlots) / every);
                var device = markerDevices[m % markerDevices.Length];
                long ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                int n = Encoding.UTF8.GetBytes($"{{\"device\":\"{device}\",\"ts\":{ms},\"marker\":{m},\"pm25\":{10 + m % 7}.5}}", payload);
                publishedMs[m] = ms;
                Volatile.Write(ref published[m], Stopwatch.GetTimestamp());
                publisher.Publish($"city/json/environment/{device}", payload.AsSpan(0, n));
                Volatile.Write(ref publishedMarkers, m + 1);
            }
            else
            {
                load.MoveNext();
                publisher.Publish(load.Current.Topic, load.Current.Payload);
                loadMessages++;
            }
        });

        using var stopPolling = new CancellationTokenSource();
        var queryTimes = new List<double>();
        var poller = PollAsync(influx.Url, database, s.PollMs, published, publishedMs, seen, () => Volatile.Read(ref publishedMarkers), queryTimes, stopPolling.Token);

        double cpuBefore = gateway.CpuSeconds(), influxBefore = ProcCpu.Seconds(influx.Pid);
        long batchesBefore = await BatchesAsync(gateway);
        var clock = Stopwatch.StartNew();
        await pacer.RunAsync();
        double cpu = gateway.CpuSeconds() - cpuBefore, influxCpu = ProcCpu.Seconds(influx.Pid) - influxBefore;
        long batches = await BatchesAsync(gateway) - batchesBefore;
        double elapsed = clock.Elapsed.TotalSeconds;
        await publisher.FlushAsync();
        // Every marker seen, or a generous bound after the last one was published.
        try
        {
            await Wait.UntilAsync(() => Array.TrueForAll(seen, t => t != 0), TimeSpan.FromSeconds(30), () => "markers missing");
        }
        catch (TimeoutException) { }
        stopPolling.Cancel();
        await poller;

        // Everything published must be in InfluxDB, or the delays would describe a gateway that fell behind.
        await Wait.UntilAsync(async () =>
        {
            var (_, body) = await gateway.ReadyAsync();
            return body.GetProperty("journal").GetProperty("pending").GetInt64() == 0;
        }, TimeSpan.FromMinutes(2), () => "the gateway did not catch up");
        long stored = 0;
        foreach (var domain in DeviceTypes.Domains) stored += await influx.CountAsync(database, domain, DeviceTypes.SequenceField);
        stored += await influx.CountAsync(database, "environment", "marker");

        var delays = new List<double>(markerCount);
        int lost = 0;
        for (int m = 0; m < markerCount; m++)
        {
            if (seen[m] == 0) { lost++; continue; }
            delays.Add(Stopwatch.GetElapsedTime(published[m], seen[m]).TotalMilliseconds);
        }
        var sorted = delays.Order().ToArray();
        return new Result(flush, markerCount, lost,
            Stats.Percentile(sorted, 50), Stats.Percentile(sorted, 95), Stats.Percentile(sorted, 99), Stats.Percentile(sorted, 100),
            sorted, Stats.Median(queryTimes), pacer.Sent / pacer.Seconds, pacer.MaxLagMs, cpu / elapsed, influxCpu / elapsed, batches,
            stored, loadMessages + markerCount);
    }

    /// <summary>Batches the gateway has written to InfluxDB so far.</summary>
    private static async Task<long> BatchesAsync(GatewayProcess gateway)
    {
        var (_, body) = await gateway.ReadyAsync();
        return body.TryGetProperty("batches", out var b) ? b.GetInt64() : 0;
    }

    /// <summary>
    /// Asks InfluxDB every <paramref name="pollMs"/> for the markers at or after the oldest one not
    /// yet seen, and stamps each marker the first time an answer holds it.
    /// </summary>
    private static async Task PollAsync(string influxUrl, string database, int pollMs, long[] published, long[] publishedMs, long[] seen,
        Func<long> publishedCount, List<double> queryTimes, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = new Uri(influxUrl), Timeout = TimeSpan.FromSeconds(10) };
        int oldestUnseen = 0;
        while (!ct.IsCancellationRequested)
        {
            long count = publishedCount();
            while (oldestUnseen < count && seen[oldestUnseen] != 0) oldestUnseen++;
            if (oldestUnseen < count)
            {
                var query = $"SELECT \"marker\" FROM \"environment\" WHERE \"site\" = '{MarkerSite}' AND time >= {publishedMs[oldestUnseen]}ms";
                long started = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await http.GetAsync($"/query?db={database}&epoch=ms&q={Uri.EscapeDataString(query)}", ct);
                    var body = await response.Content.ReadAsByteArrayAsync(ct);
                    long answered = Stopwatch.GetTimestamp();
                    queryTimes.Add(Stopwatch.GetElapsedTime(started, answered).TotalMilliseconds);
                    if (response.IsSuccessStatusCode) Record(body, seen, answered);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
                catch (HttpRequestException) { } // the database may not exist yet
            }
            try { await Task.Delay(pollMs, ct); } catch (OperationCanceledException) { break; }
        }
    }

    private static void Record(byte[] body, long[] seen, long answered)
    {
        using var doc = JsonDocument.Parse(body);
        foreach (var result in doc.RootElement.GetProperty("results").EnumerateArray())
        {
            if (!result.TryGetProperty("series", out var series)) continue;
            foreach (var s in series.EnumerateArray())
            foreach (var row in s.GetProperty("values").EnumerateArray())
            {
                var marker = row[1];
                if (marker.ValueKind != JsonValueKind.Number) continue;
                long m = marker.GetInt64();
                if (m >= 0 && m < seen.Length && seen[m] == 0) Volatile.Write(ref seen[m], answered);
            }
        }
    }
}
