using System.Diagnostics;
using System.Text.Json;
using CityGateway.Health;
using CityGateway.Storage.Influx;

namespace CityGateway.Benchmarks;

/// <summary>
/// The gateway's own defaults for the settings that <see cref="Tests.Infrastructure.GatewayProcess"/>
/// shortens for the tests (flush interval, retry cap, self-metrics period). Read from the
/// appsettings.json the gateway ships with (copied next to this program), else from the options
/// classes, so a benchmark measures what a deployment gets and follows any change of a default.
/// </summary>
internal static class GatewayDefaults
{
    public static int FlushIntervalMs => Setting("Influx", "FlushIntervalMs", new InfluxOptions().FlushIntervalMs);

    public static int RetryMaxMs => Setting("Influx", "RetryMaxMs", new InfluxOptions().RetryMaxMs);

    public static int SelfMetricsIntervalSeconds => Setting("SelfMetrics", "IntervalSeconds", new SelfMetricsOptions().IntervalSeconds);

    /// <summary>Command-line settings that undo the test fixture's overrides (later settings win).</summary>
    public static string[] Arguments(int? flushIntervalMs = null) =>
    [
        $"--Gateway:Influx:FlushIntervalMs={flushIntervalMs ?? FlushIntervalMs}",
        $"--Gateway:Influx:RetryMaxMs={RetryMaxMs}",
        $"--Gateway:SelfMetrics:IntervalSeconds={SelfMetricsIntervalSeconds}",
    ];

    private static int Setting(string section, string key, int fallback)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        if (!File.Exists(path)) return fallback;
        using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        return doc.RootElement.TryGetProperty("Gateway", out var g) && g.TryGetProperty(section, out var s)
               && s.TryGetProperty(key, out var v) && v.TryGetInt32(out var value)
            ? value
            : fallback;
    }
}

/// <summary>The machine's load, printed with the results: other work on the same cores shifts the figures.</summary>
internal static class Machine
{
    public static string Load()
    {
        var parts = File.ReadAllText("/proc/loadavg").Split(' ');
        return $"load average {parts[0]} (1 min), {parts[1]} (5 min) on {Environment.ProcessorCount} cores";
    }
}

/// <summary>CPU time (user + system) a process has used, from /proc/PID/stat.</summary>
internal static class ProcCpu
{
    public static double Seconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // Fields after the command name (which may contain spaces) start after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0; // utime, stime; USER_HZ is 100 on Linux
    }
}

/// <summary>A process's resident memory from /proc/PID/status.</summary>
internal readonly record struct ProcMemory(double RssMiB, double PeakRssMiB)
{
    public static ProcMemory Read(int pid)
    {
        long rss = 0, hwm = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kb(line);
        }
        return new ProcMemory(rss / 1024.0, hwm / 1024.0);
    }

    private static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
}

/// <summary>
/// Calls <c>send(k)</c> for k = 0, 1, 2, ... at a fixed rate on a thread of its own: every
/// millisecond or so it sends what has fallen due since the last wake-up, so the load is smooth
/// (a handful of messages per wake-up at 5,000/s) rather than a burst per second. Message k is
/// due at start + k / rate; a sender that falls behind catches up without skipping any.
/// </summary>
internal sealed class Pacer
{
    private readonly double _rate;
    private readonly long _count;
    private readonly Action<long> _send;
    private long _sent;

    public Pacer(double rate, long count, Action<long> send)
    {
        _rate = rate;
        _count = count;
        _send = send;
    }

    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Seconds from the first to the last send.</summary>
    public double Seconds { get; private set; }

    /// <summary>Largest lag of a send behind its due time, in milliseconds.</summary>
    public double MaxLagMs { get; private set; }

    public Task RunAsync(CancellationToken ct = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(ct);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }) { IsBackground = true, Name = "bench-pacer" };
        thread.Start();
        return done.Task;
    }

    private void Run(CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        long k = 0;
        double maxLag = 0;
        while (k < _count && !ct.IsCancellationRequested)
        {
            double now = clock.Elapsed.TotalSeconds;
            long due = Math.Min(_count, (long)(now * _rate) + 1);
            if (due > k)
            {
                maxLag = Math.Max(maxLag, (now - k / _rate) * 1000);
                for (; k < due; k++)
                {
                    _send(k);
                    Interlocked.Increment(ref _sent);
                }
            }
            Thread.Sleep(1);
        }
        Seconds = clock.Elapsed.TotalSeconds;
        MaxLagMs = maxLag;
    }
}
