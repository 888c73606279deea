using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CityGateway.Benchmarks.E2e;
using CityGateway.Normalisation;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks;

/// <summary>
/// End-to-end throughput: the same publisher load (flat JSON from a fleet of simulated devices,
/// published as fast as the publisher can, at QoS 0 and at QoS 1) through
/// (a) the broker alone to mosquitto_sub, (b) InfluxDB's own ingest of exactly the points the
/// gateway writes, (c) the gateway from broker to InfluxDB, (d) a Node-RED flow doing the same job,
/// and with --baseline (o) the gateway of another commit, run the same way right after case c.
/// Every case checks that every message arrived or every point is stored, else it is a failure,
/// not a rate. Per case: rate, wall time, and CPU seconds per 1,000 messages of each process
/// involved; medians over the runs; then the gateway against the broker and InfluxDB combined,
/// 1 / (1/a + 1/b), and against Node-RED.
/// </summary>
internal static class E2eBenchmark
{
    private const string Filter = "city/json/#";
    private const string CountFrom = "SELECT count(\"seq\") FROM \"traffic\",\"water\",\"environment\"";

    private sealed record Settings(int Runs, int Messages, int Devices, int Warmup, int Seed, int[] Qos, string Cases,
        int TimeoutSeconds, int StallSeconds, int Posters, int BatchSize, string NodeRedFolder, bool Sample, bool Trace,
        string? Baseline);

    private sealed record Cpu(string Process, double Seconds);

    private sealed record CaseResult(string Case, int Qos, int Run, long Messages, double Seconds, IReadOnlyList<Cpu> Cpu, string? Error)
    {
        public double Rate => Messages / Seconds;
    }

    private static readonly Dictionary<string, string> CaseNames = new()
    {
        ["a"] = "a broker → mosquitto_sub",
        ["b"] = "b InfluxDB /write",
        ["c"] = "c gateway",
        ["d"] = "d Node-RED",
        ["o"] = "o gateway at the baseline",
    };

    public static async Task<int> RunAsync(ParseResult args)
    {
        int messages = args.GetValue<int>("--messages");
        var s = new Settings(
            Runs: args.GetValue<int>("--runs"),
            Messages: messages,
            Devices: args.GetValue<int>("--devices"),
            Warmup: args.GetValue<int>("--warmup"),
            Seed: args.GetValue<int>("--seed"),
            Qos: args.GetValue<int[]>("--qos")!,
            Cases: args.GetValue<string>("--cases")!,
            TimeoutSeconds: args.GetValue<int>("--timeout"),
            StallSeconds: args.GetValue<int>("--stall"),
            Posters: args.GetValue<int>("--posters"),
            BatchSize: args.GetValue<int>("--batch"),
            NodeRedFolder: args.GetValue<string>("--node-red-dir") ?? Path.Combine(
                Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "city-gateway-bench", "node-red"),
            Sample: args.GetValue<bool>("--sample"),
            Trace: args.GetValue<bool>("--trace"),
            Baseline: args.GetValue<string>("--baseline"));
        string? baselineDll = null;
        if (s.Baseline is { } commit)
        {
            var (dll, hash) = BaselineGateway.Build(commit);
            baselineDll = dll;
            Console.WriteLine($"case o: the gateway of {hash[..12]} ({commit}), run after each case c with the same settings and load");
        }
        var workload = Workload.Create(s.Devices, s.Messages, s.Warmup, s.Seed);
        using var scratch = new TempDir("bench-e2e");
        var registryFile = FleetSimulator.BuildRegistry(workload.FleetOptions());
        var registryPath = scratch.File("devices.json");
        FleetSimulator.WriteRegistry(registryFile, registryPath);
        Console.WriteLine($"load average before: {LoadAverage()}");
        Console.WriteLine($"end to end: {s.Messages:N0} messages (after {s.Warmup:N0} warm-up) from {s.Devices:N0} flat-JSON devices, " +
                          $"QoS {string.Join(" and ", s.Qos)}, {s.Runs} runs, cases {s.Cases}, {Environment.ProcessorCount} cores");

        string? nodeRedProblem = null;
        if (s.Cases.Contains('d'))
        {
            nodeRedProblem = NodeRedFlow.EnsureInstalled(s.NodeRedFolder);
            if (nodeRedProblem is not null) Console.WriteLine("case d cannot run: " + nodeRedProblem);
        }
        List<byte[]>? warmBatches = null, mainBatches = null;
        if (s.Cases.Contains('b'))
        {
            warmBatches = ExpectedLines.GzipBatches(workload.WarmupSet(), registryFile, scratch.Path, s.BatchSize);
            mainBatches = ExpectedLines.GzipBatches(workload.MainSet(), registryFile, scratch.Path, s.BatchSize);
        }

        // Nothing is dropped for a subscriber that falls behind a publisher running flat out.
        using var broker = new MosquittoBroker(maxQueuedMessages: (int)Math.Min(int.MaxValue, Math.Max(10_000_000L, 4L * (s.Messages + s.Warmup))));
        using var influx = new InfluxServer();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { Timeout = TimeSpan.FromSeconds(60) };
        var env = new Env(s, workload, broker, influx, http, scratch, registryFile, registryPath);
        var results = new List<CaseResult>();

        async Task Run(Func<Task<CaseResult>> body, string name, int run, int qos)
        {
            CaseResult r;
            try
            {
                r = await body();
            }
            catch (Exception e)
            {
                // Reported as this case's failure; the other cases still run.
                r = new CaseResult(name, qos, run, s.Messages, double.NaN, [], e is BenchmarkFailure ? e.Message : $"{e.GetType().Name}: {e.Message}");
            }
            results.Add(r);
            Print(r);
        }

        for (int run = 1; run <= s.Runs; run++)
        {
            int r = run;
            foreach (var q in s.Qos)
                if (s.Cases.Contains('a')) await Run(() => BrokerCaseAsync(env, r, q), "a", r, q);
            if (s.Cases.Contains('b')) await Run(() => InfluxCaseAsync(env, r, warmBatches!, mainBatches!), "b", r, -1);
            foreach (var q in s.Qos)
            {
                // Alternated, so that what the machine does meanwhile weighs on both alike.
                if (s.Cases.Contains('c')) await Run(() => GatewayCaseAsync(env, r, q), "c", r, q);
                if (baselineDll is not null) await Run(() => GatewayCaseAsync(env, r, q, baselineDll), "o", r, q);
            }
            foreach (var q in s.Qos)
            {
                if (!s.Cases.Contains('d')) continue;
                if (nodeRedProblem is not null) await Run(() => throw new BenchmarkFailure("not run: " + nodeRedProblem), "d", r, q);
                else await Run(() => NodeRedCaseAsync(env, r, q), "d", r, q);
            }
        }
        Summarise(s, results);
        Console.WriteLine($"load average after: {LoadAverage()} (other work on this machine shares its cores with the benchmark)");
        int failed = results.Count(x => x.Error is not null);
        if (failed > 0) Console.WriteLine($"{failed} case runs FAILED (see above); their figures are left out of the medians.");
        return failed > 0 ? 1 : 0;
    }

    private sealed record Env(Settings S, Workload Workload, MosquittoBroker Broker, InfluxServer Influx, HttpClient Http, TempDir Scratch,
        DeviceRegistryFile RegistryFile, string RegistryPath);

    // ------------------------------------------------------------------ (a) broker pass-through

    private static async Task<CaseResult> BrokerCaseAsync(Env env, int run, int qos)
    {
        var s = env.S;
        using var publisher = await PublisherProcess.StartAsync(env.Workload, env.Broker.Url, qos);
        var id = $"bench-sub-r{run}q{qos}";
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // bash's `times` reports the CPU time of its finished children: mosquitto_sub's own, exactly.
        foreach (var a in new[] { "-c", "mosquitto_sub \"$@\" >/dev/null; rc=$?; times >&2; exit $rc", "bench-sub",
                     "-h", "127.0.0.1", "-p", env.Broker.Port.ToString(), "-i", id, "-t", Filter, "-q", qos.ToString(), "-C", s.Messages.ToString() })
            psi.ArgumentList.Add(a);
        using var sub = Process.Start(psi)!;
        var stderr = sub.StandardError.ReadToEndAsync();
        _ = sub.StandardOutput.ReadToEndAsync();
        try
        {
            await env.Broker.WaitForSubscriptionAsync(id, Filter, TimeSpan.FromSeconds(15));
            await SettleAsync(env.Broker.CpuSeconds);
            double mosquitto0 = env.Broker.CpuSeconds();
            var clock = Stopwatch.StartNew();
            publisher.Go();
            var done = publisher.DoneAsync(TimeSpan.FromSeconds(s.TimeoutSeconds));
            double seconds = await WaitForCompletionAsync(clock, s, done, 20,
                () => Task.FromResult(sub.HasExited),
                () => Task.FromResult(env.Broker.CpuSeconds()),
                () => Task.FromResult("mosquitto_sub has not received every message"));
            double mosquitto = env.Broker.CpuSeconds() - mosquitto0;
            sub.WaitForExit();
            var outcome = await done;
            if (sub.ExitCode != 0) throw new BenchmarkFailure($"mosquitto_sub exited with {sub.ExitCode}: {await stderr}");
            CheckPublished(outcome, s.Messages, qos);
            return new CaseResult("a", qos, run, s.Messages, seconds,
                [new("publisher", outcome.CpuSeconds), new("mosquitto", mosquitto), new("mosquitto_sub", ChildrenCpu(await stderr))], null);
        }
        finally
        {
            if (!sub.HasExited) sub.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The second line of bash's `times`: "0m1.234s 0m0.567s" (children's user and system time).</summary>
    private static double ChildrenCpu(string times)
    {
        var lines = times.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length < 2) throw new BenchmarkFailure("no CPU times from mosquitto_sub's shell: " + times);
        return lines[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Sum(t =>
        {
            int m = t.IndexOf('m');
            return int.Parse(t[..m], CultureInfo.InvariantCulture) * 60 + double.Parse(t[(m + 1)..^1], CultureInfo.InvariantCulture);
        });
    }

    // ------------------------------------------------------------------ (b) InfluxDB ingest

    private static async Task<CaseResult> InfluxCaseAsync(Env env, int run, List<byte[]> warm, List<byte[]> main)
    {
        var s = env.S;
        var db = $"e2e_r{run}_influx";
        await QueryAsync(env, $"CREATE DATABASE \"{db}\"");
        try
        {
            await PostAllAsync(env, db, warm);
            await SettleAsync(env.Influx.CpuSecondsOf);
            double influx0 = env.Influx.CpuSecondsOf(), self0 = ServiceProcess.CpuSeconds(Environment.ProcessId);
            var clock = Stopwatch.StartNew();
            await PostAllAsync(env, db, main);
            double seconds = clock.Elapsed.TotalSeconds;
            double influx = env.Influx.CpuSecondsOf() - influx0, self = ServiceProcess.CpuSeconds(Environment.ProcessId) - self0;
            await CheckStoredAsync(env, db, s.Messages, s.Warmup);
            return new CaseResult("b", -1, run, s.Messages, seconds, [new("influxd", influx), new("poster", self)], null);
        }
        finally
        {
            await DropAsync(env, db);
        }
    }

    /// <summary>Posts the gzip batches to /write with a few concurrent posters; every answer must be 204.</summary>
    private static async Task PostAllAsync(Env env, string db, List<byte[]> batches)
    {
        var uri = new Uri($"{env.Influx.Url}/write?db={Uri.EscapeDataString(db)}&precision=ns");
        int next = -1;
        async Task Poster()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < batches.Count)
            {
                var content = new ByteArrayContent(batches[i]);
                content.Headers.ContentEncoding.Add("gzip");
                content.Headers.ContentType = new MediaTypeHeaderValue("text/plain") { CharSet = "utf-8" };
                using var response = await env.Http.PostAsync(uri, content);
                if (response.StatusCode != HttpStatusCode.NoContent)
                    throw new BenchmarkFailure($"InfluxDB answered {(int)response.StatusCode} to batch {i}: {await response.Content.ReadAsStringAsync()}");
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, env.S.Posters)).Select(_ => Task.Run(Poster)));
    }

    // ------------------------------------------------------------------ (c) the gateway

    private static async Task<CaseResult> GatewayCaseAsync(Env env, int run, int qos, string? dll = null)
    {
        var s = env.S;
        string name = dll is null ? "c" : "o";
        var db = $"e2e_r{run}_q{qos}_gateway_{name}";
        var clientId = $"bench-gw-{name}-r{run}q{qos}";
        var folder = Directory.CreateDirectory(Path.Combine(env.Scratch.Path, $"gateway-{name}-r{run}-q{qos}")).FullName;
        try
        {
            // Default settings but for ports, paths, database and client id (GatewayProcess sets test
            // values for these three; they are put back to the defaults here).
            await using var gateway = new GatewayProcess(env.Broker.Url, env.Influx.Url, db, env.RegistryPath, folder,
                "--Gateway:Mqtt:ClientId=" + clientId, "--Gateway:Influx:FlushIntervalMs=1000",
                "--Gateway:Influx:RetryMaxMs=30000", "--Gateway:SelfMetrics:IntervalSeconds=5")
            {
                Dll = dll ?? Path.Combine(AppContext.BaseDirectory, "Gateway.dll"),
            };
            await gateway.StartAsync();
            await env.Broker.WaitForSubscriptionAsync(clientId, Filter, TimeSpan.FromSeconds(30));
            using var publisher = await PublisherProcess.StartAsync(env.Workload, env.Broker.Url, qos);
            await publisher.WarmAsync();
            // Polled as in the measured run, so /readyz's own code is as warm then.
            var warmClock = Stopwatch.StartNew();
            while (!(await ReadyAsync(env, gateway)).CaughtUp(s.Warmup))
            {
                if (warmClock.Elapsed > TimeSpan.FromSeconds(300)) throw new BenchmarkFailure("the gateway did not store the warm-up set:\n" + Tail(gateway.Log));
                await Task.Delay(ReadyPollMs);
            }
            await SettleAsync(gateway.CpuSeconds, env.Influx.CpuSecondsOf, env.Broker.CpuSeconds);

            double gw0 = gateway.CpuSeconds(), mosquitto0 = env.Broker.CpuSeconds(), influx0 = env.Influx.CpuSecondsOf();
            var clock = Stopwatch.StartNew();
            publisher.Go();
            var done = publisher.DoneAsync(TimeSpan.FromSeconds(s.TimeoutSeconds));
            Ready last = default;
            var nextTrace = TimeSpan.Zero;
            double seconds = await WaitForCompletionAsync(clock, s, done, ReadyPollMs,
                async () =>
                {
                    last = await ReadyAsync(env, gateway);
                    if (s.Trace && clock.Elapsed >= nextTrace)
                    {
                        nextTrace += TimeSpan.FromSeconds(1);
                        Console.WriteLine($"    {clock.Elapsed.TotalSeconds,5:F1} s: received {last.Received - s.Warmup,8}  stored {last.PointsWritten,8}  journal pending {last.Pending,8}  influx: {last.Influx}");
                    }
                    return last.CaughtUp(s.Warmup + s.Messages);
                },
                () => Task.FromResult((double)(last.Received + last.PointsWritten)),
                () => Task.FromResult($"the gateway received {last.Received - s.Warmup} of {s.Messages}, {last.Pending} not yet stored:\n{Tail(gateway.Log)}"));
            double gw = gateway.CpuSeconds() - gw0, mosquitto = env.Broker.CpuSeconds() - mosquitto0, influx = env.Influx.CpuSecondsOf() - influx0;
            var outcome = await done;
            CheckPublished(outcome, s.Messages, qos);
            await CheckStoredAsync(env, db, s.Messages, s.Warmup);
            if (last.Quarantined > 0) throw new BenchmarkFailure($"the gateway quarantined {last.Quarantined} messages");
            return new CaseResult(name, qos, run, s.Messages, seconds,
                [new("publisher", outcome.CpuSeconds), new("mosquitto", mosquitto), new("gateway", gw), new("influxd", influx)], null);
        }
        finally
        {
            await DropAsync(env, db);
        }
    }

    /// <summary>How often the gateway's /readyz is asked during a run: often enough for the wall
    /// time, rarely enough that answering costs the gateway next to nothing.</summary>
    private const int ReadyPollMs = 200;

    private readonly record struct Ready(long Received, long Pending, long PointsWritten, long Quarantined, string Influx)
    {
        public bool CaughtUp(long received) => Received >= received && Pending == 0;
    }

    private static async Task<Ready> ReadyAsync(Env env, GatewayProcess gateway)
    {
        using var response = await env.Http.GetAsync(gateway.OperatorUrl + "/readyz");
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var b = doc.RootElement;
        return new Ready(b.GetProperty("received").GetInt64(), b.GetProperty("journal").GetProperty("pending").GetInt64(),
            b.GetProperty("pointsWritten").GetInt64(), b.GetProperty("quarantined").GetInt64(),
            b.GetProperty("influx").GetProperty("detail").GetString() ?? "");
    }

    // ------------------------------------------------------------------ (d) Node-RED

    private static async Task<CaseResult> NodeRedCaseAsync(Env env, int run, int qos)
    {
        var s = env.S;
        var db = $"e2e_r{run}_q{qos}_nodered";
        await QueryAsync(env, $"CREATE DATABASE \"{db}\"");
        try
        {
            using var flow = await NodeRedFlow.StartAsync(s.NodeRedFolder, env.Broker, env.Influx.Port, db, qos, $"bench-nr-r{run}q{qos}", env.RegistryFile);
            using var publisher = await PublisherProcess.StartAsync(env.Workload, env.Broker.Url, qos);
            await publisher.WarmAsync();
            await Wait.UntilAsync(() => flow.Failure is { } f ? throw new BenchmarkFailure("node-red: " + f) : flow.Stored >= s.Warmup,
                TimeSpan.FromSeconds(300), () => $"node-red stored {flow.Stored} of the {s.Warmup} warm-up points:\n{Tail(flow.Log)}");
            await SettleAsync(flow.CpuSeconds, env.Influx.CpuSecondsOf, env.Broker.CpuSeconds);

            double nr0 = flow.CpuSeconds(), mosquitto0 = env.Broker.CpuSeconds(), influx0 = env.Influx.CpuSecondsOf();
            var clock = Stopwatch.StartNew();
            publisher.Go();
            var done = publisher.DoneAsync(TimeSpan.FromSeconds(s.TimeoutSeconds));
            double seconds = await WaitForCompletionAsync(clock, s, done, 50,
                () => Task.FromResult(flow.Failure is { } f ? throw new BenchmarkFailure("node-red: " + f) : flow.Stored >= s.Warmup + s.Messages),
                () => Task.FromResult(flow.Stored + flow.CpuSeconds()),
                () => Task.FromResult($"node-red stored {flow.Stored - s.Warmup} of {s.Messages}"));
            double nr = flow.CpuSeconds() - nr0, mosquitto = env.Broker.CpuSeconds() - mosquitto0, influx = env.Influx.CpuSecondsOf() - influx0;
            var outcome = await done;
            CheckPublished(outcome, s.Messages, qos);
            await CheckStoredAsync(env, db, s.Messages, s.Warmup);
            return new CaseResult("d", qos, run, s.Messages, seconds,
                [new("publisher", outcome.CpuSeconds), new("mosquitto", mosquitto), new("node-red", nr), new("influxd", influx)], null);
        }
        finally
        {
            await DropAsync(env, db);
        }
    }

    // ------------------------------------------------------------------ shared

    /// <summary>
    /// Polls until <paramref name="done"/>; returns the seconds on <paramref name="clock"/> then.
    /// Fails when the publisher failed, when nothing moves for the stall time after the publisher
    /// finished (a message was lost: a count can never complete), or at the case's time limit.
    /// </summary>
    private static async Task<double> WaitForCompletionAsync(Stopwatch clock, Settings s, Task<PublishOutcome> publisher, int pollMs,
        Func<Task<bool>> done, Func<Task<double>> progress, Func<Task<string>> describe)
    {
        double last = double.NaN;
        var lastChange = clock.Elapsed;
        while (true)
        {
            if (await done()) return clock.Elapsed.TotalSeconds;
            if (publisher.IsFaulted) await publisher; // throws the publisher's failure
            double p = await progress();
            if (p != last)
            {
                last = p;
                lastChange = clock.Elapsed;
            }
            if (publisher.IsCompleted && clock.Elapsed - lastChange > TimeSpan.FromSeconds(s.StallSeconds))
                throw new BenchmarkFailure($"nothing moved for {s.StallSeconds} s after the publisher finished: {await describe()}");
            if (clock.Elapsed > TimeSpan.FromSeconds(s.TimeoutSeconds))
                throw new BenchmarkFailure($"not complete after {s.TimeoutSeconds} s: {await describe()}");
            await Task.Delay(pollMs);
        }
    }

    /// <summary>
    /// After the warm-up, waits until the processes are idle (under 4 % of a core for a second), at
    /// most 30 s, so that what the warm-up set in motion (the .NET runtime's background tier-1
    /// compilation, V8's optimiser, InfluxDB's cache snapshots) is not billed to the measured run.
    /// </summary>
    private static async Task SettleAsync(params Func<double>[] cpu)
    {
        var clock = Stopwatch.StartNew();
        int quiet = 0;
        double last = cpu.Sum(c => c());
        while (quiet < 2 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(500);
            double now = cpu.Sum(c => c());
            quiet = now - last < 0.02 ? quiet + 1 : 0;
            last = now;
        }
    }

    private static void CheckPublished(PublishOutcome o, long expected, int qos)
    {
        if (o.Published != expected || o.Completed != expected || o.Rejected != 0)
            throw new BenchmarkFailure($"the publisher published {o.Published} of {expected}, {o.Completed} completed" +
                                       $"{(qos > 0 ? " (acknowledged)" : " (written)")}, {o.Rejected} rejected");
    }

    /// <summary>Every measured point and every warm-up point is in the database, and nothing else.</summary>
    private static async Task CheckStoredAsync(Env env, string db, long expected, long warmup)
    {
        long main = await CountAsync(env, db, $"time >= {env.Workload.MainStartNs}");
        long warm = await CountAsync(env, db, $"time < {env.Workload.MainStartNs}");
        if (main != expected || warm != warmup)
            throw new BenchmarkFailure($"InfluxDB holds {main} of the {expected} measured points and {warm} of the {warmup} warm-up points");
    }

    private static async Task<long> CountAsync(Env env, string db, string where)
    {
        var rows = await env.Influx.RowsAsync(db, $"{CountFrom} WHERE {where}");
        return rows.Sum(r => r["count"].GetInt64());
    }

    private static async Task QueryAsync(Env env, string statement)
    {
        using var content = new FormUrlEncodedContent([new("q", statement)]);
        using var response = await env.Http.PostAsync(env.Influx.Url + "/query", content);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode || body.Contains("\"error\"", StringComparison.Ordinal))
            throw new BenchmarkFailure($"{statement}: HTTP {(int)response.StatusCode} {body}");
    }

    /// <summary>Each case's database goes when the case is done, so InfluxDB does not compact it during the next.</summary>
    private static async Task DropAsync(Env env, string db)
    {
        if (env.S.Sample) await PrintSampleAsync(env, db);
        try { await QueryAsync(env, $"DROP DATABASE \"{db}\""); }
        catch (Exception e) when (e is BenchmarkFailure or HttpRequestException) { Console.WriteLine($"  (could not drop {db}: {e.Message})"); }
    }

    /// <summary>One stored point per measurement, to compare what each case writes (--sample).</summary>
    private static async Task PrintSampleAsync(Env env, string db)
    {
        foreach (var m in new[] { "traffic", "water", "environment" })
        {
            var rows = await env.Influx.RowsAsync(db, $"SELECT * FROM \"{m}\" WHERE time >= {env.Workload.MainStartNs} LIMIT 1");
            foreach (var row in rows)
                Console.WriteLine($"  {db} {m}: " + string.Join(", ", row.Where(kv => kv.Value.ValueKind != JsonValueKind.Null).Select(kv => $"{kv.Key}={kv.Value}")));
        }
    }

    private static double CpuSecondsOf(this InfluxServer influx) => ServiceProcess.CpuSeconds(influx.Pid);

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;

    // ------------------------------------------------------------------ output

    private static string QosLabel(int qos) => qos < 0 ? "  -  " : $"QoS {qos}";

    private static void Print(CaseResult r)
    {
        var head = $"run {r.Run} {CaseNames[r.Case],-26} {QosLabel(r.Qos)}";
        if (r.Error is not null)
        {
            Console.WriteLine($"{head}  FAILED: {r.Error}");
            return;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{head} {r.Messages,9:N0} msgs {r.Seconds,7:F2} s {r.Rate,10:N0} msg/s   CPU s per 1,000 msgs: ") +
            string.Join("  ", r.Cpu.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Process} {c.Seconds / r.Messages * 1000:F4}"))));
    }

    private static void Summarise(Settings s, List<CaseResult> results)
    {
        Console.WriteLine();
        Console.WriteLine($"medians over {s.Runs} runs ({s.Messages:N0} messages from {s.Devices:N0} devices, {Environment.ProcessorCount} cores; CPU in seconds per 1,000 messages):");
        var medians = new Dictionary<(string, int), double>();
        var cpuMedians = new Dictionary<(string, int, string), double>();
        foreach (var g in results.Where(r => r.Error is null).GroupBy(r => (r.Case, r.Qos)).OrderBy(g => g.Key.Case).ThenBy(g => g.Key.Qos))
        {
            double rate = Stats.Median(g.Select(r => r.Rate));
            medians[g.Key] = rate;
            var processes = g.First().Cpu.Select(c => c.Process).ToArray();
            var cpu = processes.Select(p => (p, Stats.Median(g.Select(r => r.Cpu.First(c => c.Process == p).Seconds / r.Messages * 1000)))).ToArray();
            foreach (var (process, median) in cpu) cpuMedians[(g.Key.Case, g.Key.Qos, process)] = median;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {CaseNames[g.Key.Case],-26} {QosLabel(g.Key.Qos)} {rate,10:N0} msg/s {Stats.Median(g.Select(r => r.Seconds)),7:F2} s  ({g.Count()} ok)  ") +
                string.Join("  ", cpu.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.p} {c.Item2:F4}"))) +
                string.Create(CultureInfo.InvariantCulture, $"  total {cpu.Sum(c => c.Item2):F4}"));
        }
        Console.WriteLine();
        Console.WriteLine("targets (on the medians):");
        foreach (var q in s.Qos)
        {
            double a = medians.GetValueOrDefault(("a", q), double.NaN), b = medians.GetValueOrDefault(("b", -1), double.NaN);
            double c = medians.GetValueOrDefault(("c", q), double.NaN);
            double bound = 1 / (1 / a + 1 / b);
            Console.WriteLine(Target($"QoS {q}: gateway / (1/(1/a + 1/b))", c, bound, 0.95,
                string.Create(CultureInfo.InvariantCulture, $"c {c:N0} vs {bound:N0} msg/s")));
            // CPU per message: the broker and InfluxDB are shared by every case, so throughput
            // ratios between c and d are capped by them; CPU per message is not.
            double gw = cpuMedians.GetValueOrDefault(("c", q, "gateway"), double.NaN);
            double sub = cpuMedians.GetValueOrDefault(("a", q, "mosquitto_sub"), double.NaN);
            double nodeRed = cpuMedians.GetValueOrDefault(("d", q, "node-red"), double.NaN);
            Console.WriteLine(AtMost($"QoS {q}: gateway CPU / mosquitto_sub CPU", gw, sub, 1.5,
                string.Create(CultureInfo.InvariantCulture, $"{gw * 1000:F1} vs {sub * 1000:F1} ms per 1,000 msgs")));
            Console.WriteLine(Info($"QoS {q}: Node-RED CPU / gateway CPU", nodeRed, gw,
                string.Create(CultureInfo.InvariantCulture, $"{nodeRed * 1000:F1} vs {gw * 1000:F1} ms per 1,000 msgs")));
            if (s.Baseline is null) continue;
            // Against the baseline: at least as fast (QoS 1 with synced group commit against the baseline's
            // unsynced journal; QoS 0 no slower), and the CPU each spends per message.
            double o = medians.GetValueOrDefault(("o", q), double.NaN);
            double oldGw = cpuMedians.GetValueOrDefault(("o", q, "gateway"), double.NaN);
            Console.WriteLine(Target($"QoS {q}: gateway / baseline, msg/s", c, o, 1.0,
                string.Create(CultureInfo.InvariantCulture, $"c {c:N0} vs o {o:N0} msg/s")));
            Console.WriteLine(Info($"QoS {q}: gateway CPU / baseline CPU", gw, oldGw,
                string.Create(CultureInfo.InvariantCulture, $"{gw * 1000:F1} vs {oldGw * 1000:F1} ms per 1,000 msgs")));
            Console.WriteLine(Info($"QoS {q}: baseline CPU / mosquitto_sub CPU", oldGw, sub,
                string.Create(CultureInfo.InvariantCulture, $"{oldGw * 1000:F1} vs {sub * 1000:F1} ms per 1,000 msgs")));
        }
    }

    private static string AtMost(string what, double value, double reference, double limit, string detail)
    {
        double ratio = value / reference;
        if (!double.IsFinite(ratio)) return $"  {what,-36} n/a (a case is missing or failed)";
        return string.Create(CultureInfo.InvariantCulture,
            $"  {what,-36} {ratio,6:F2}  (target <= {limit:0.##}) {(ratio <= limit ? "PASS" : "MISS")}   {detail}");
    }

    private static string Info(string what, double value, double reference, string detail)
    {
        double ratio = value / reference;
        if (!double.IsFinite(ratio)) return $"  {what,-36} n/a (a case is missing or failed)";
        return string.Create(CultureInfo.InvariantCulture, $"  {what,-36} {ratio,6:F2}              {detail}");
    }

    private static string Target(string what, double value, double reference, double target, string detail)
    {
        double ratio = value / reference;
        if (!double.IsFinite(ratio)) return $"  {what,-36} n/a (a case is missing or failed)";
        return string.Create(CultureInfo.InvariantCulture,
            $"  {what,-36} {ratio,6:F2}  (target >= {target:0.##}) {(ratio >= target ? "PASS" : "MISS")}   {detail}");
    }
}
