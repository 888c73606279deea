using System.Buffers;
using System.CommandLine;
using System.Text;
using CityGateway.Core;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;
using V2 = InfluxDB.Client;
using V3 = InfluxDB3.Client;

namespace CityGateway.Benchmarks;

/// <summary>
/// Why the gateway writes line protocol itself: one 3-tag, 5-field point encoded by the gateway's
/// <see cref="LineProtocol"/> and by the two official clients (InfluxDB.Client for v2, InfluxDB3.Client
/// for v3), side by side in every run. Two cases each: <em>encode</em> (the point exists, only its line
/// is made) and <em>build + encode</em> (the point is made for each message, as a source would, then
/// encoded: for the gateway that is a recycled point reset to its series, as the normaliser does;
/// the clients' points are immutable builders, made anew). CPU per point is the thread's CPU time
/// divided by points; bytes allocated per point come from the runtime's per-thread counter. The
/// clients' lines are strings, which still have to become UTF-8 bytes for the request: that is not
/// counted against them. Then each of the three writes one point to an InfluxDB 1.6 server started
/// here, to show which of them can write to it at all.
/// </summary>
internal static class EncodeBenchmark
{
    private const long Timestamp = 1_764_000_000_123_456_789;

    public static async Task<int> RunAsync(ParseResult args)
    {
        int runs = args.GetValue<int>("--runs");
        int ms = args.GetValue<int>("--ms");
        Console.WriteLine($"encode benchmark: one 3-tag, 5-field point, {ms} ms per case, {runs} runs; {Machine.Load()}");

        var gateway = new GatewayPath();
        var v2 = V2Point();
        var v3 = V3Point();
        Case[] cases =
        [
            .. gateway.Cases(),
            .. ClientCases("InfluxDB.Client 5.1.0 (`PointData`)", "InfluxDB.Client", () => v2.ToLineProtocol(), () => V2Point().ToLineProtocol()),
            .. ClientCases("InfluxDB3.Client 1.10.0 (`PointData`)", "InfluxDB3.Client", () => v3.ToLineProtocol()!, () => V3Point().ToLineProtocol()!),
        ];
        Console.WriteLine();
        foreach (var c in cases) Console.WriteLine($"{c.Name,-30} {c.Line().TrimEnd('\n')}");
        Console.WriteLine();
        foreach (var c in cases) c.Measure(Math.Max(500, ms / 2)); // warm-up: tiered compilation settles

        var results = cases.ToDictionary(c => c, _ => new List<(double Ns, double Bytes)>());
        for (int run = 1; run <= runs; run++)
        {
            foreach (var c in cases)
            {
                var r = c.Measure(ms);
                results[c].Add(r);
                Console.WriteLine($"run {run} {c.Name,-30} {r.Ns,8:F0} ns/point {r.Bytes,7:F0} B/point");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| encoder | encode: ns / B per point | build + encode: ns / B per point |");
        Console.WriteLine("|---|---|---|");
        for (int i = 0; i < cases.Length; i += 2)
        {
            var encode = results[cases[i]];
            var build = results[cases[i + 1]];
            Console.WriteLine($"| {cases[i].Encoder} | {Stats.Median(encode.Select(x => x.Ns)):N0} / {Stats.Median(encode.Select(x => x.Bytes)):N0} " +
                              $"| {Stats.Median(build.Select(x => x.Ns)):N0} / {Stats.Median(build.Select(x => x.Bytes)):N0} |");
        }

        Console.WriteLine();
        await WriteToInfluxOneSixAsync();
        return 0;
    }

    /// <summary>Each encoder's point written to a real InfluxDB 1.6 through its own HTTP path.</summary>
    private static async Task WriteToInfluxOneSixAsync()
    {
        using var influx = new InfluxServer();
        influx.Start();
        const string database = "encode_bench";
        using var gateway = influx.Client(database);
        await gateway.EnsureDatabaseAsync(CancellationToken.None);
        Console.WriteLine($"writes to InfluxDB 1.6 at {influx.Url}:");

        var buffer = new ArrayBufferWriter<byte>();
        LineProtocol.Write(buffer, GatewayPath.NewPoint());
        var result = await gateway.WriteAsync(buffer.WrittenMemory, CancellationToken.None);
        Console.WriteLine($"  gateway ({gateway.WriteEndpoint}): {result.StatusCode} {result.Outcome}");

        // The v2 client's 1.8 compatibility form: user:password as the token, database/retention as the bucket.
        using (var v2 = new V2.InfluxDBClient(influx.Url, "", "", database, "autogen"))
            Console.WriteLine($"  InfluxDB.Client 5.1.0 (/api/v2/write): {await Outcome(() => v2.GetWriteApiAsync().WritePointAsync(V2Point(), $"{database}/autogen", "-"))}");

        using (var v3 = new V3.InfluxDBClient(influx.Url, token: "", database: database))
            Console.WriteLine($"  InfluxDB3.Client 1.10.0 (/api/v3/write_lp): {await Outcome(() => v3.WritePointAsync(V3Point()))}");

        long stored = await influx.CountAsync(database, "traffic", "speed_kmh");
        Console.WriteLine($"  points stored: {stored}");
    }

    private static async Task<string> Outcome(Func<Task> write)
    {
        try
        {
            await write();
            return "written";
        }
        catch (Exception e)
        {
            var message = e.Message.ReplaceLineEndings(" ");
            return $"refused: {e.GetType().Name}: {(message.Length > 160 ? message[..160] + "…" : message)}";
        }
    }

    /// <summary>One measured case: <see cref="Step"/> encodes (or builds and encodes) one point and returns the
    /// length of its line; <see cref="Line"/> shows that line.</summary>
    private sealed record Case(string Encoder, string Name, Func<string> Line, Func<int> Step)
    {
        public (double Ns, double Bytes) Measure(int millis)
        {
            long points = 0, made = 0;
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            long cpu = PipelineBenchmark.ThreadCpuNs();
            long end = Environment.TickCount64 + millis;
            while (Environment.TickCount64 < end)
            {
                for (int i = 0; i < 1024; i++) made += Step();
                points += 1024;
            }
            long cpuNs = PipelineBenchmark.ThreadCpuNs() - cpu;
            long bytes = GC.GetAllocatedBytesForCurrentThread() - allocated;
            if (made == 0) throw new InvalidOperationException($"{Name} made no line protocol");
            return ((double)cpuNs / points, (double)bytes / points);
        }
    }

    /// <summary>A client's two cases: its line is a string made per point.</summary>
    private static Case[] ClientCases(string encoder, string name, Func<string> encode, Func<string> buildAndEncode) =>
    [
        new(encoder, name + " encode", encode, () => encode().Length),
        new(encoder, name + " build + encode", buildAndEncode, () => buildAndEncode().Length),
    ];

    private static V2.Writes.PointData V2Point() => V2.Writes.PointData.Measurement("traffic")
        .Tag("city", "lumen").Tag("device", "tc-0042").Tag("lane", "2")
        .Field("speed_kmh", 42.5).Field("vehicle_count", 17L).Field("occupancy_pct", 63.25).Field("congested", false).Field("headway_s", 3.8)
        .Timestamp(Timestamp, V2.Api.Domain.WritePrecision.Ns);

    private static V3.Write.PointData V3Point() => V3.Write.PointData.Measurement("traffic")
        .SetTag("city", "lumen").SetTag("device", "tc-0042").SetTag("lane", "2")
        .SetField("speed_kmh", 42.5).SetField("vehicle_count", 17L).SetField("occupancy_pct", 63.25).SetField("congested", false).SetField("headway_s", 3.8)
        .SetTimestamp(Timestamp, V3.Write.WritePrecision.Ns);

    /// <summary>The gateway's path: the normaliser's point of a known series into the writer's reused buffer.</summary>
    private sealed class GatewayPath
    {
        private static readonly Series Series = new("traffic", [new("city", "lumen"), new("device", "tc-0042"), new("lane", "2")]);
        private readonly Point _point = NewPoint();
        private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);

        public static Point NewPoint()
        {
            var p = new Point(Series, Timestamp);
            Fill(p);
            return p;
        }

        private static void Fill(Point p)
        {
            p.Fields.Add(PointField.Of("speed_kmh", 42.5));
            p.Fields.Add(PointField.Of("vehicle_count", 17L));
            p.Fields.Add(PointField.Of("occupancy_pct", 63.25));
            p.Fields.Add(PointField.Of("congested", false));
            p.Fields.Add(PointField.Of("headway_s", 3.8));
        }

        public Case[] Cases() =>
        [
            new("gateway (`LineProtocol`)", "gateway encode", () => Line(Encode), Encode),
            new("gateway (`LineProtocol`)", "gateway build + encode", () => Line(BuildAndEncode), BuildAndEncode),
        ];

        private int Encode()
        {
            if (_buffer.FreeCapacity < 1024) _buffer.ResetWrittenCount();
            int before = _buffer.WrittenCount;
            LineProtocol.Write(_buffer, _point);
            return _buffer.WrittenCount - before;
        }

        /// <summary>A recycled point reset to its series and filled, as the normaliser does, then encoded.</summary>
        private int BuildAndEncode()
        {
            _point.Reset(Series, Timestamp, "city/json/traffic/tc-0042");
            Fill(_point);
            return Encode();
        }

        private string Line(Func<int> step)
        {
            _buffer.ResetWrittenCount();
            step();
            return Encoding.UTF8.GetString(_buffer.WrittenSpan);
        }
    }
}
