using System.CommandLine;
using System.Diagnostics;
using System.Text;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CityGateway.Benchmarks;

/// <summary>
/// The cost of each Fsync policy on this machine's disk: appends per second from one appending
/// thread (unpaced), and the delay from Append to durable (the durability wait completing, as an
/// acknowledging source sees it) at full speed and at a paced rate. Also the cost of one
/// fdatasync against one fsync (FileStream.Flush(true)) after a small append.
/// </summary>
internal static class JournalBenchmark
{
    public static int Run(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        int seconds = args.GetValue<int>("--seconds");
        int rate = args.GetValue<int>("--rate");
        int payload = args.GetValue<int>("--payload");
        Console.WriteLine($"journal benchmark: {payload}-byte payloads, {seconds} s per run, {runs} runs, paced rate {rate}/s; {Machine.Load()}");
        CompareSyncCalls();
        Console.WriteLine();
        var policies = new[] { FsyncPolicy.None, FsyncPolicy.Interval, FsyncPolicy.Always, FsyncPolicy.Group };
        var results = policies.ToDictionary(p => p, _ => new List<(double Rate, double P50, double P99, double PacedP50, double PacedP99)>());
        for (int run = 1; run <= runs; run++)
        {
            foreach (var policy in policies)
            {
                var full = Measure(policy, seconds, payload, pacedRate: 0);
                var paced = Measure(policy, seconds, payload, pacedRate: rate);
                results[policy].Add((full.Rate, full.P50, full.P99, paced.P50, paced.P99));
                Console.WriteLine($"run {run} {policy,-8} {full.Rate,10:F0} appends/s; append→durable p50 {full.P50,8:F2} ms p99 {full.P99,8:F2} ms " +
                                  $"(at {rate}/s: p50 {paced.P50,7:F2} ms p99 {paced.P99,7:F2} ms)");
            }
        }
        Console.WriteLine();
        Console.WriteLine($"| Fsync | appends/s (one thread) | append→durable p50 / p99, full speed | append→durable p50 / p99 at {rate}/s |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var policy in policies)
        {
            var r = results[policy];
            Console.WriteLine($"| `{policy}` | {Stats.Median(r.Select(x => x.Rate)):N0} | {Stats.Median(r.Select(x => x.P50)):F2} / {Stats.Median(r.Select(x => x.P99)):F2} ms " +
                              $"| {Stats.Median(r.Select(x => x.PacedP50)):F2} / {Stats.Median(r.Select(x => x.PacedP99)):F2} ms |");
        }
        return 0;
    }

    private static RawFrame Frame(int i, int payload) =>
        new("mqtt", $"city/json/traffic/t-{i % 500:D4}", Encoding.UTF8.GetBytes(new string('x', payload)), i, 1, payload);

    private static (double Rate, double P50, double P99) Measure(FsyncPolicy policy, int seconds, int payload, int pacedRate)
    {
        using var dir = new TempDir("bench-journal");
        var options = new JournalOptions { Path = dir.Path, Fsync = policy, MaxBytes = 1L << 40, SegmentBytes = 64L << 20 };
        using var journal = new FileJournal(options, NullLogger.Instance);
        int capacity = pacedRate > 0 ? pacedRate * seconds + 16 : 4_000_000;
        var appendedAt = new long[capacity];
        var durableAt = new long[capacity];
        var frames = Enumerable.Range(0, 512).Select(i => Frame(i, payload)).ToArray();
        long end = Stopwatch.GetTimestamp() + seconds * Stopwatch.Frequency;
        long start = Stopwatch.GetTimestamp();
        int n = 0;
        var pending = new List<Task>();
        while (n < capacity)
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= end) break;
            if (pacedRate > 0)
            {
                long due = start + (long)((double)n * Stopwatch.Frequency / pacedRate);
                if (now < due)
                {
                    Thread.Sleep(1);
                    continue;
                }
            }
            // From before Append: under Always the disk flush is inside it.
            appendedAt[n] = Stopwatch.GetTimestamp();
            long seq = journal.Append(frames[n % frames.Length]);
            var wait = journal.WaitDurableAsync(seq, CancellationToken.None);
            if (wait.IsCompleted) durableAt[n] = Stopwatch.GetTimestamp();
            else
            {
                int slot = n;
                pending.Add(wait.AsTask().ContinueWith(_ => durableAt[slot] = Stopwatch.GetTimestamp(), TaskContinuationOptions.ExecuteSynchronously));
            }
            n++;
        }
        double elapsed = (double)(Stopwatch.GetTimestamp() - start) / Stopwatch.Frequency;
        Task.WaitAll(pending.ToArray());
        var latencies = new double[n];
        for (int i = 0; i < n; i++) latencies[i] = (durableAt[i] - appendedAt[i]) * 1000.0 / Stopwatch.Frequency;
        Array.Sort(latencies);
        return (n / elapsed, Stats.Percentile(latencies, 50), Stats.Percentile(latencies, 99));
    }

    /// <summary>fdatasync (what the journal calls) against fsync through FileStream.Flush(true), each after a 200-byte append.</summary>
    private static void CompareSyncCalls()
    {
        using var dir = new TempDir("bench-sync");
        var record = new byte[200];
        const int calls = 300;
        double Time(Action<FileStream> sync)
        {
            using var fs = new FileStream(Path.Combine(dir.Path, Guid.NewGuid().ToString("N")), FileMode.Create, FileAccess.Write, FileShare.Read, 0);
            var samples = new double[calls];
            for (int i = 0; i < calls; i++)
            {
                fs.Write(record);
                long t = Stopwatch.GetTimestamp();
                sync(fs);
                samples[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
            }
            Array.Sort(samples);
            return Stats.Percentile(samples, 50);
        }
        var results = new List<(double Fdatasync, double Fsync)>();
        for (int round = 0; round < 3; round++) results.Add((Time(fs => SegmentSync.DataSync(fs.SafeFileHandle)), Time(fs => fs.Flush(flushToDisk: true))));
        Console.WriteLine($"one sync after a 200-byte append (median of {calls} calls, median of 3 rounds): fdatasync {Stats.Median(results.Select(r => r.Fdatasync)):F3} ms, " +
                          $"fsync (FileStream.Flush(true)) {Stats.Median(results.Select(r => r.Fsync)):F3} ms");
    }
}
