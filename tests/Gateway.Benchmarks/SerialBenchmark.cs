using System.CommandLine;
using System.Diagnostics;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks;

/// <summary>
/// Serial ingest over a real pty pair into a real InfluxDB, the gateway as its own process
/// (MQTT off). Two loads: the instrument paced to a 115200-baud 8N1 line (11,520 bytes/s), and
/// unthrottled (as fast as the pty takes it). For each: frames per second the gateway sustained
/// end to end (every line read, journaled, decoded and written to InfluxDB) and the gateway's CPU
/// time per frame (user + system from /proc, so the simulator and InfluxDB are not counted).
/// Medians over several runs.
/// </summary>
internal static class SerialBenchmark
{
    private sealed record Result(string Load, long Lines, double Seconds, double FramesPerSecond, double CpuMicrosPerFrame, double CpuShare);

    public static async Task<int> RunAsync(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        int lines = args.GetValue<int>("--lines");
        int seconds = args.GetValue<int>("--seconds");
        using var influx = new InfluxServer();
        using var dir = new TempDir("bench-serial");
        var results = new List<Result>();
        for (int run = 1; run <= runs; run++)
        {
            foreach (var throttled in new[] { true, false })
            {
                var r = await RunOnceAsync(influx, dir, run, throttled, lines, seconds);
                results.Add(r);
                Console.WriteLine($"run {run} {r.Load,-22} {r.Lines,8} frames in {r.Seconds,6:F1} s: {r.FramesPerSecond,9:F0} frames/s, " +
                                  $"gateway CPU {r.CpuMicrosPerFrame,6:F1} µs/frame ({r.CpuShare:P0} of one core)");
            }
        }
        var idle = await IdleCpuAsync(influx, dir);
        Console.WriteLine();
        Console.WriteLine($"idle gateway with one open port: {idle:P1} of one core");
        Console.WriteLine($"medians over {runs} runs (one port, kv lines with checksums, {Environment.ProcessorCount} cores):");
        foreach (var g in results.GroupBy(r => r.Load))
            Console.WriteLine($"  {g.Key,-22} {Stats.Median(g.Select(r => r.FramesPerSecond)),9:F0} frames/s   " +
                              $"{Stats.Median(g.Select(r => r.CpuMicrosPerFrame)),6:F1} µs gateway CPU per frame   " +
                              $"{Stats.Median(g.Select(r => r.CpuShare)):P0} of one core");
        return 0;
    }

    /// <summary>CPU share of a gateway with an open, silent port (timers, health pings, self-metrics).</summary>
    private static async Task<double> IdleCpuAsync(InfluxServer influx, TempDir dir)
    {
        using var pty = new PtyPair();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "idle")).FullName;
        var registry = Path.Combine(folder, "devices.json");
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(new SerialSimulatorOptions { Format = "kv" }), registry);
        await using var gateway = new GatewayProcess("mqtt://127.0.0.1:1", influx.Url, "benchidle", registry, folder,
            "--Gateway:Mqtt:Enabled=false", "--Gateway:Serial:Ports:0:Name=idle", $"--Gateway:Serial:Ports:0:Path={pty.GatewayEnd}",
            "--Gateway:Serial:Ports:0:BaudRate=115200", "--Gateway:SelfMetrics:IntervalSeconds=5", "--Logging:LogLevel:Default=Warning");
        await gateway.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(3)); // past start-up
        double before = gateway.CpuSeconds();
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(10));
        return (gateway.CpuSeconds() - before) / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Every line read and everything in the journal stored in InfluxDB.</summary>
    private static Task WaitCaughtUp(GatewayProcess gateway, long lines) => Wait.UntilAsync(async () =>
    {
        var (_, body) = await gateway.ReadyAsync();
        return body.GetProperty("journal").GetProperty("pending").GetInt64() == 0
               && body.GetProperty("serial")[0].GetProperty("lines").GetInt64() >= lines;
    }, TimeSpan.FromMinutes(5), () => "the gateway did not catch up");

    private static async Task<Result> RunOnceAsync(InfluxServer influx, TempDir dir, int run, bool throttled, int lines, int seconds)
    {
        using var pty = new PtyPair();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, $"run{run}-{(throttled ? "baud" : "free")}")).FullName;
        var options = new SerialSimulatorOptions
        {
            Port = pty.DeviceEnd, Format = "kv", Devices = 5, Seed = run,
            Rate = 0, Throttle = throttled, BaudRate = 115200,
            Duration = throttled ? TimeSpan.FromSeconds(seconds) : null,
            MessagesPerDevice = throttled ? null : lines / 5,
            RegistryPath = Path.Combine(folder, "devices.json"),
        };
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(options), options.RegistryPath);
        await using var gateway = new GatewayProcess("mqtt://127.0.0.1:1", influx.Url, $"bench{run}{(throttled ? "b" : "f")}", options.RegistryPath, folder,
        [
            "--Gateway:Mqtt:Enabled=false",
            "--Gateway:Serial:Ports:0:Name=bench", $"--Gateway:Serial:Ports:0:Path={pty.GatewayEnd}", "--Gateway:Serial:Ports:0:BaudRate=115200",
            "--Gateway:Serial:Ports:0:Format=kv", "--Gateway:Serial:Ports:0:DeviceField=dev", "--Gateway:Serial:Ports:0:Checksum=Required",
            // The gateway's default flush interval and self-metrics period, not the tests' short ones.
            .. GatewayDefaults.Arguments(),
            "--Logging:LogLevel:Default=Warning",
        ]);
        await gateway.StartAsync();
        // Warm up (JIT, connection pools) with a short burst, then measure.
        var warm = await SerialSimulator.RunAsync(new SerialSimulatorOptions
        {
            Port = pty.DeviceEnd, Format = "kv", Devices = 5, Seed = 1000 + run, Rate = 0, MessagesPerDevice = 2000,
        });
        await WaitCaughtUp(gateway, warm.LinesWritten);
        double cpuBefore = gateway.CpuSeconds();
        var sw = Stopwatch.StartNew();
        var report = await SerialSimulator.RunAsync(options);
        await WaitCaughtUp(gateway, warm.LinesWritten + report.LinesWritten);
        double elapsed = sw.Elapsed.TotalSeconds;
        double cpu = gateway.CpuSeconds() - cpuBefore;
        long stored = await influx.CountAsync($"bench{run}{(throttled ? "b" : "f")}", "water", "seq");
        if (stored != report.IntactLines + warm.IntactLines) throw new InvalidOperationException($"stored {stored} of {report.IntactLines} lines");
        return new Result(throttled ? "115200 baud (8N1)" : "unthrottled", report.LinesWritten, elapsed,
            report.LinesWritten / elapsed, cpu / report.LinesWritten * 1e6, cpu / elapsed);
    }
}
