using System.CommandLine;
using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Decoding.Serial;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Simulators;
using CityGateway.Sources.Serial;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Benchmarks;

/// <summary>
/// The in-process pipeline on one thread: route → decode → normalise → line protocol, per payload
/// format, over frames the simulators produce (many devices, every message distinct). The work per
/// message is exactly what the gateway's pipeline and writer do between the journal and the HTTP
/// request: <see cref="PipelineService.Handle"/> (route, decode, normalise, encode the points into the
/// line arena), the lines copied into a reused batch buffer, and the arena's chunks released after
/// each batch, as the writer does once InfluxDB has taken it.
/// Messages per second per core are messages divided by the thread's CPU time (so other processes
/// on the machine do not count against it); bytes allocated per message come from the runtime's
/// per-thread allocation counter. Each object on the .NET heap takes at least 24 bytes, so bytes ÷ 24
/// bounds the number of allocations per message from above.
/// </summary>
internal static class PipelineBenchmark
{
    private const double TargetFlatJson = 1_000_000;
    private const double MaxOtherRatio = 3;
    private const int MinObjectBytes = 24;

    private sealed record Result(string Format, double MessagesPerCpuSecond, double BytesPerMessage, double PointsPerMessage, double LineBytesPerMessage);

    public static int Run(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        int devices = args.GetValue<int>("--devices");
        int millis = args.GetValue<int>("--ms");
        var only = args.GetValue<string>("--format");
        using var dir = new TempDir("bench-pipeline");

        var formats = new[] { "json", "senml", "chirpstack", "tts", "kv" }.Where(f => only is null || f == only).ToArray();
        var benches = formats.Select(f => Setup.Create(f, devices, dir)).ToList();
        try
        {
            foreach (var bench in benches)
            {
                Console.WriteLine($"{bench.Format}: {bench.Sample}");
                bench.Loop(Math.Max(2_000, 2 * millis)); // warm-up: tiered compilation (to its optimised, profile-guided tier), caches, pools
            }
            // Formats take turns within each run, so that a slow spell of the machine falls on all of
            // them alike; the ratios to flat JSON are taken within each run, then their median.
            var results = new List<Result>();
            var ratios = formats.ToDictionary(f => f, _ => new List<double>());
            for (int run = 1; run <= runs; run++)
            {
                var round = new Dictionary<string, Result>();
                foreach (var bench in benches)
                {
                    var r = bench.Measure(millis);
                    results.Add(r);
                    round[r.Format] = r;
                    Console.WriteLine($"run {run} {r.Format,-10} {r.MessagesPerCpuSecond,12:N0} msg/s per core  {r.BytesPerMessage,7:F1} B allocated/msg  " +
                                      $"{r.PointsPerMessage:F2} points/msg  {r.LineBytesPerMessage:F0} B line protocol/msg");
                }
                if (round.TryGetValue("json", out var jsonRun))
                    foreach (var (format, r) in round) ratios[format].Add(jsonRun.MessagesPerCpuSecond / r.MessagesPerCpuSecond);
            }
            foreach (var bench in benches)
                if (bench.Quarantined > 0)
                    throw new InvalidOperationException($"{bench.Format}: {bench.Quarantined} frames were quarantined ({bench.QuarantineReasons}); the benchmark input must be clean");

            Console.WriteLine();
            Console.WriteLine($"medians over {runs} runs of {millis} ms each, one thread, {devices} devices per format ({Environment.ProcessorCount} cores, .NET {Environment.Version}):");
            Console.WriteLine($"  {"format",-10} {"msg/s per core",15} {"B alloc/msg",12} {"allocs/msg ≤",13} {"json ÷ format",14}");
            var medians = results.GroupBy(r => r.Format).ToDictionary(g => g.Key, g => (
                Rate: Stats.Median(g.Select(r => r.MessagesPerCpuSecond)),
                Bytes: Stats.Median(g.Select(r => r.BytesPerMessage)),
                Ratio: Stats.Median(ratios[g.Key])));
            medians.TryGetValue("json", out var json);
            foreach (var (format, m) in medians)
                Console.WriteLine($"  {format,-10} {m.Rate,15:N0} {m.Bytes,12:F1} {m.Bytes / MinObjectBytes,13:F2} {(double.IsNaN(m.Ratio) ? "-" : $"{m.Ratio:F2}×"),14}");
            Console.WriteLine();
            bool ok = true;
            if (json.Rate > 0)
            {
                ok &= Target($"flat JSON ≥ {TargetFlatJson:N0} msg/s per core", json.Rate >= TargetFlatJson, $"{json.Rate:N0}");
                ok &= Target("flat JSON ≤ 1 allocation/msg", json.Bytes / MinObjectBytes <= 1, $"≤ {json.Bytes / MinObjectBytes:F2} ({json.Bytes:F1} B/msg)");
                foreach (var (format, m) in medians.Where(m => m.Key != "json"))
                    ok &= Target($"{format} within {MaxOtherRatio}× of flat JSON", m.Ratio <= MaxOtherRatio, $"{m.Ratio:F2}× (median of the per-run ratios)");
            }
            return ok ? 0 : 1;
        }
        finally
        {
            foreach (var bench in benches) bench.Dispose();
        }
    }

    private static bool Target(string what, bool met, string figure)
    {
        Console.WriteLine($"  {(met ? "PASS" : "MISS")}  {what}: {figure}");
        return met;
    }

    private sealed class Setup : IDisposable
    {
        private readonly RawFrame[] _frames;
        private readonly InProcessPipeline _pipeline;
        private readonly ArrayBufferWriter<byte> _batch = new(1 << 20);
        private readonly List<EncodedPoint> _lines = new(8);
        private int _next;
        private LineChunk? _last;
        private long _pointsTotal;
        private long _lineBytes;

        private Setup(string format, RawFrame[] frames, InProcessPipeline pipeline)
        {
            Format = format;
            _frames = frames;
            _pipeline = pipeline;
        }

        public string Format { get; }

        /// <summary>One frame and the line protocol it becomes, to show what is measured.</summary>
        public string Sample
        {
            get
            {
                var frame = _frames[0];
                Handle(frame);
                var line = _lines.Count > 0 ? System.Text.Encoding.UTF8.GetString(_lines[0].Line).TrimEnd('\n') : "(no point)";
                return $"{frame.Topic} {System.Text.Encoding.UTF8.GetString(frame.Payload)}\n  → {line}";
            }
        }

        private void Handle(RawFrame frame) => _pipeline.Handle(frame, _lines);

        public long Quarantined => _pipeline.Quarantine.Total;

        public string QuarantineReasons => _pipeline.QuarantineReasons;

        public static Setup Create(string format, int devices, TempDir dir)
        {
            var now = UnixTime.ToNs(DateTimeOffset.UtcNow);
            DeviceRegistryFile registry;
            List<RawFrame> frames = [];
            var routes = new List<TopicRoute>();
            if (format == "kv")
            {
                var port = new SerialPortOptions { Path = "/dev/ttyBENCH", Format = "kv", DeviceField = "dev", Checksum = ChecksumPolicy.Required };
                routes.Add(port.ToRoute());
                var o = new SerialSimulatorOptions { Port = port.Path, Format = "kv", Devices = Math.Min(devices, 999), MessagesPerDevice = 20, Seed = 7 };
                registry = SerialSimulator.BuildRegistry(o);
                foreach (var line in SerialSimulator.Generate(o, DateTimeOffset.UtcNow, TimeSpan.FromMilliseconds(10)))
                {
                    var text = line.Text.AsSpan().TrimEnd("\r\n"u8).ToArray();
                    frames.Add(new RawFrame("serial", port.Topic, text, now, 0, text.Length));
                }
            }
            else
            {
                var o = new SimulatorOptions
                {
                    Formats = [format], TrafficDevices = devices / 3, WaterDevices = devices / 3, EnvironmentDevices = devices - 2 * (devices / 3),
                    MessagesPerDevice = 10, Seed = 7,
                };
                registry = FleetSimulator.BuildRegistry(o);
                foreach (var m in FleetSimulator.Generate(o, DateTimeOffset.UtcNow.AddMinutes(-1), TimeSpan.FromMilliseconds(1)))
                    frames.Add(new RawFrame("mqtt", m.Topic, m.Payload, now, 1, m.Payload.Length));
            }
            // Devices take turns in the simulator's order; shuffle so consecutive messages come from different devices.
            var shuffled = frames.ToArray();
            new Random(1).Shuffle(shuffled);

            return new Setup(format, shuffled, new InProcessPipeline(registry, Path.Combine(dir.Path, format + "-quarantine.jsonl"), [.. routes]));
        }

        public void Loop(int millis)
        {
            long end = Environment.TickCount64 + millis;
            while (Environment.TickCount64 < end) Step(1024);
        }

        public Result Measure(int millis)
        {
            long messages = 0;
            long points = _pointsTotal, lineBytes = _lineBytes;
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            long cpu = ThreadCpuNs();
            long end = Environment.TickCount64 + millis;
            while (Environment.TickCount64 < end)
            {
                Step(1024);
                messages += 1024;
            }
            long cpuNs = ThreadCpuNs() - cpu;
            long bytes = GC.GetAllocatedBytesForCurrentThread() - allocated;
            return new Result(Format, messages / (cpuNs / 1e9), (double)bytes / messages, (double)(_pointsTotal - points) / messages,
                (double)(_lineBytes - lineBytes) / messages);
        }

        private void Step(int count)
        {
            int before = _batch.WrittenCount;
            for (int i = 0; i < count; i++)
            {
                var frame = _frames[_next];
                if (++_next == _frames.Length) _next = 0;
                Handle(frame);
                foreach (var line in _lines)
                {
                    _batch.Write(line.Line);
                    _last = line.Chunk;
                }
                _pointsTotal += _lines.Count;
            }
            _lineBytes += _batch.WrittenCount - before;
            // One writer batch's worth of lines; then the buffer and the arena's chunks are reused, as the writer does.
            if (_batch.WrittenCount > 512 * 1024)
            {
                _batch.ResetWrittenCount();
                if (_last is not null) _pipeline.Lines.Release(_last);
            }
        }

        public void Dispose() => _pipeline.Dispose();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    private const int ClockThreadCpuTime = 3;

    internal static long ThreadCpuNs()
    {
        if (ClockGetTime(ClockThreadCpuTime, out var ts) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return ts.Seconds * 1_000_000_000 + ts.Nanoseconds;
    }
}
