using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks;

/// <summary>
/// The gateway's memory with a large registry: 100,000 registered devices, of which 10,000 publish
/// (QoS 1, flat JSON, a few thousand messages per second in all), default settings, the gateway as
/// its own process. Resident memory comes from /proc/PID/status (VmRSS now, VmHWM the peak); the
/// managed heap from the gateway's /readyz. Part-way through the load the registry file is
/// rewritten, so the reload (a second registry built while the first is in use) is in the peak.
/// </summary>
internal static class MemoryBenchmark
{
    private const double TargetPeakMiB = 150_000_000 / 1048576.0; // 150 MB

    private sealed record Settings(int Devices, int Active, int Rate, int Seconds, bool Trace, string? Baseline);

    private sealed record Result(double ReadySeconds, double StartupRss, double StartupPeak, double StartupGcHeap, double SteadyRss,
        double SteadyGcHeap, double SteadyGcCommitted, double PeakBeforeReload, double Peak, string GcMode, long Stored, long Published, double Rate);

    public static async Task<int> RunAsync(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        var s = new Settings(
            Devices: args.GetValue<int>("--devices"),
            Active: args.GetValue<int>("--active"),
            Rate: args.GetValue<int>("--rate"),
            Seconds: args.GetValue<int>("--seconds"),
            Trace: args.GetValue<bool>("--trace"),
            Baseline: args.GetValue<string>("--baseline"));
        if (args.GetValue<string>("--write-registry") is { } registryOut)
        {
            // The same registry for other tools (a profiler, a reload by hand).
            FleetSimulator.WriteRegistry(BuildRegistry(s.Devices, s.Active), registryOut);
            return 0;
        }
        using var influx = new InfluxServer();
        using var dir = new TempDir("bench-memory");
        var registryPath = Path.Combine(dir.Path, "devices.json");
        var sw = Stopwatch.StartNew();
        FleetSimulator.WriteRegistry(BuildRegistry(s.Devices, s.Active), registryPath);
        Console.WriteLine($"memory: registry of {s.Devices} devices ({new FileInfo(registryPath).Length / 1048576.0:F1} MiB of JSON, written in {sw.Elapsed.TotalSeconds:F1} s); " +
                          $"{s.Active} of them publish {s.Rate} msg/s in all (QoS 1, flat JSON) for {s.Seconds} s; registry rewritten (reloaded) at {2 * s.Seconds / 3} s; gateway defaults");
        Console.WriteLine($"before: {Machine.Load()}");
        // With a baseline, each run measures this gateway and then the baseline's, alike.
        var variants = new List<(string Name, string? Dll)> { ("this gateway", null) };
        if (s.Baseline is { } commit)
        {
            var (dll, hash) = BaselineGateway.Build(commit);
            variants.Add(($"baseline {hash[..12]}", dll));
        }
        var results = variants.ToDictionary(v => v.Name, _ => new List<Result>());
        for (int run = 1; run <= runs; run++)
            foreach (var (name, dll) in variants)
            {
                var r = await RunOnceAsync(influx, dir, registryPath, run, s, dll);
                results[name].Add(r);
                Console.WriteLine($"run {run}, {name}: ready in {r.ReadySeconds:F1} s; after start-up RSS {r.StartupRss:F0} MiB (peak so far {r.StartupPeak:F0}, GC heap {r.StartupGcHeap:F0}); " +
                                  $"under load RSS {r.SteadyRss:F0} MiB (GC heap {r.SteadyGcHeap:F0}, committed {r.SteadyGcCommitted:F0}); " +
                                  $"peak {r.PeakBeforeReload:F0} MiB before the reload, {r.Peak:F0} MiB overall; {r.GcMode} GC; " +
                                  $"stored {r.Stored} of {r.Published} at {r.Rate:F0} msg/s");
            }
        Console.WriteLine($"after: {Machine.Load()}");
        foreach (var (name, list) in results) Summarise(name, list, runs);
        return 0;
    }

    /// <summary>
    /// The simulated fleet of <paramref name="active"/> devices (the ones that publish), and silent
    /// registered devices of the same types up to <paramref name="devices"/>: the same shape of entry
    /// (type, district, site, coordinates), with ids that continue each domain's numbering.
    /// </summary>
    private static Normalisation.DeviceRegistryFile BuildRegistry(int devices, int active)
    {
        var registry = FleetSimulator.BuildRegistry(FleetOptions(active));
        var rng = new Random(7);
        var districts = Fleet.Districts;
        string[] prefixes = ["trf", "wat", "env"];
        for (int i = registry.Devices.Count, n = 0; i < devices; i++, n++)
        {
            int d = n % 3;
            var types = DeviceTypes.ForDomain(DeviceTypes.Domains[d]);
            var type = types[rng.Next(types.Count)];
            if (!registry.DeviceTypes.ContainsKey(type.Name))
                throw new InvalidOperationException($"device type {type.Name} is not in the fleet's registry");
            registry.Devices[$"{prefixes[d]}-{10_000 + n / 3:D5}"] = new Normalisation.DeviceEntry
            {
                Type = type.Name,
                District = districts[rng.Next(districts.Count)],
                Site = $"{type.SitePrefix}-{rng.Next(1, 60)}",
                Latitude = Math.Round(Fleet.CentreLatitude + (rng.NextDouble() - 0.5) * 0.08, 6),
                Longitude = Math.Round(Fleet.CentreLongitude + (rng.NextDouble() - 0.5) * 0.11, 6),
            };
        }
        return registry;
    }

    private static SimulatorOptions FleetOptions(int devices)
    {
        int perDomain = devices / 3;
        return new SimulatorOptions
        {
            TrafficDevices = devices - 2 * perDomain, WaterDevices = perDomain, EnvironmentDevices = perDomain,
            Formats = ["json"], Seed = 42,
        };
    }

    private static void Summarise(string name, List<Result> results, int runs)
    {
        double peak = Stats.Median(results.Select(r => r.Peak));
        Console.WriteLine();
        Console.WriteLine($"{name}: medians over {runs} run(s) ({Environment.ProcessorCount} cores; MiB = 2^20 bytes; RSS from /proc, GC heap from /readyz):");
        Console.WriteLine($"  after start-up, before load   RSS {Stats.Median(results.Select(r => r.StartupRss)),5:F0} MiB   GC heap {Stats.Median(results.Select(r => r.StartupGcHeap)),4:F0} MiB   " +
                          $"(start-up peak {Stats.Median(results.Select(r => r.StartupPeak)):F0} MiB)");
        Console.WriteLine($"  steady state under load       RSS {Stats.Median(results.Select(r => r.SteadyRss)),5:F0} MiB   GC heap {Stats.Median(results.Select(r => r.SteadyGcHeap)),4:F0} MiB   " +
                          $"(GC committed {Stats.Median(results.Select(r => r.SteadyGcCommitted)):F0} MiB; outside the GC heap: runtime, code, stacks, " +
                          $"native {Stats.Median(results.Select(r => r.SteadyRss - r.SteadyGcCommitted)):F0} MiB)");
        Console.WriteLine($"  peak before the reload        {Stats.Median(results.Select(r => r.PeakBeforeReload)),5:F0} MiB");
        Console.WriteLine($"  peak (VmHWM), reload included {peak,5:F0} MiB   target <= 150 MB ({TargetPeakMiB:F0} MiB): {Stats.Verdict(peak <= TargetPeakMiB)}");
    }

    private static async Task<Result> RunOnceAsync(InfluxServer influx, TempDir dir, string sharedRegistry, int run, Settings s, string? dll)
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, $"run{run}{(dll is null ? "" : "-baseline")}")).FullName;
        var registryPath = Path.Combine(folder, "devices.json");
        File.Copy(sharedRegistry, registryPath);
        var database = $"memory{run}{(dll is null ? "" : "b")}";
        using var broker = new MosquittoBroker();
        await using var gateway = new GatewayProcess(broker.Url, influx.Url, database, registryPath, folder, GatewayDefaults.Arguments())
        {
            Dll = dll ?? Path.Combine(AppContext.BaseDirectory, "Gateway.dll"),
        };
        var clock = Stopwatch.StartNew();
        await gateway.StartAsync();
        double readySeconds = clock.Elapsed.TotalSeconds;

        // Settled after start-up, before any load.
        await Task.Delay(TimeSpan.FromSeconds(5));
        var startup = ProcMemory.Read(gateway.Pid);
        var (startupGc, _, gcMode) = await GcAsync(gateway);

        using var publisher = await Publisher.ConnectAsync(broker.Url);
        var activeOptions = FleetOptions(s.Active);
        using var load = FleetSimulator.Generate(activeOptions, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(1.0 / s.Rate)).GetEnumerator();
        long total = (long)s.Rate * s.Seconds;
        var pacer = new Pacer(s.Rate, total, _ =>
        {
            load.MoveNext();
            publisher.Publish(load.Current.Topic, load.Current.Payload);
        });

        // Sample while the load runs: RSS twice a second, the GC heap once a second.
        var rss = new List<(double At, double MiB)>();
        var heap = new List<(double At, double Heap, double Committed)>();
        double peakBeforeReload = 0;
        using var stop = new CancellationTokenSource();
        var loadClock = Stopwatch.StartNew();
        var sampler = Task.Run(async () =>
        {
            bool reloaded = false;
            int tick = 0;
            while (!stop.IsCancellationRequested)
            {
                double at = loadClock.Elapsed.TotalSeconds;
                var m = ProcMemory.Read(gateway.Pid);
                rss.Add((at, m.RssMiB));
                if (s.Trace && tick % 4 == 0)
                {
                    // Every two seconds: how resident memory, the managed heap and the collections evolve.
                    var (_, body) = await gateway.ReadyAsync();
                    var p = body.GetProperty("process");
                    Console.WriteLine($"  {at,5:F1} s  RSS {m.RssMiB,4:F0} MiB (peak {m.PeakRssMiB,4:F0})  GC heap {p.GetProperty("gcHeapBytes").GetInt64() / 1048576.0,4:F0} MiB, " +
                                      $"committed {p.GetProperty("gcCommittedBytes").GetInt64() / 1048576.0,4:F0} MiB  collections gen0/1/2 {p.GetProperty("gcCollections")}  " +
                                      $"pauses {p.GetProperty("gcPauseMs").GetInt64()} ms{(reloaded ? "  (after the reload)" : "")}");
                }
                if (tick++ % 2 == 0)
                {
                    var (h, c, _) = await GcAsync(gateway);
                    heap.Add((at, h, c));
                }
                if (!reloaded && at >= 2.0 * s.Seconds / 3)
                {
                    peakBeforeReload = m.PeakRssMiB;
                    // Same devices, new modification time: the gateway builds a second registry and swaps it in.
                    // Written aside and renamed into place, as an operator's deployment would, so a half-written file is never read.
                    File.WriteAllBytes(registryPath + ".new", File.ReadAllBytes(sharedRegistry));
                    File.Move(registryPath + ".new", registryPath, overwrite: true);
                    reloaded = true;
                }
                try { await Task.Delay(500, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        await pacer.RunAsync();
        double rate = pacer.Sent / pacer.Seconds;
        await publisher.FlushAsync();
        // The reload must have happened (it is logged) and the gateway must have stored everything.
        await Wait.UntilAsync(() => CountLoaded(gateway.Log) >= 2, TimeSpan.FromSeconds(30), () => "the registry was not reloaded:\n" + gateway.Log);
        await Wait.UntilAsync(async () =>
        {
            var (_, body) = await gateway.ReadyAsync();
            return body.GetProperty("journal").GetProperty("pending").GetInt64() == 0;
        }, TimeSpan.FromMinutes(2), () => "the gateway did not catch up");
        stop.Cancel();
        await sampler;
        var end = ProcMemory.Read(gateway.Pid);
        long stored = 0;
        foreach (var domain in DeviceTypes.Domains) stored += await influx.CountAsync(database, domain, DeviceTypes.SequenceField);

        // Steady state: the middle third of the load, after warm-up and before the reload.
        double from = s.Seconds / 3.0, to = 2.0 * s.Seconds / 3;
        return new Result(readySeconds, startup.RssMiB, startup.PeakRssMiB, startupGc,
            Stats.Median(rss.Where(x => x.At >= from && x.At < to).Select(x => x.MiB)),
            Stats.Median(heap.Where(x => x.At >= from && x.At < to).Select(x => x.Heap)),
            Stats.Median(heap.Where(x => x.At >= from && x.At < to).Select(x => x.Committed)),
            peakBeforeReload, end.PeakRssMiB, gcMode, stored, pacer.Sent, rate);
    }

    private static int CountLoaded(string log) =>
        log.Split('\n').Count(l => l.Contains("Device registry loaded", StringComparison.Ordinal));

    /// <summary>Managed heap and GC-committed memory in MiB, and the GC mode, from /readyz.</summary>
    private static async Task<(double Heap, double Committed, string Mode)> GcAsync(GatewayProcess gateway)
    {
        var (_, body) = await gateway.ReadyAsync();
        var p = body.GetProperty("process");
        return (p.GetProperty("gcHeapBytes").GetInt64() / 1048576.0, p.GetProperty("gcCommittedBytes").GetInt64() / 1048576.0,
            p.GetProperty("gcMode").GetString() ?? "");
    }
}
