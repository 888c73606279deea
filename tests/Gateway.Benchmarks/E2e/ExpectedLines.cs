using System.Buffers;
using System.IO.Compression;
using CityGateway.Decoding;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Benchmarks.E2e;

/// <summary>
/// The line protocol the gateway writes for the workload's messages, made in-process by the
/// gateway's own stages as its pipeline runs them (route, flat-JSON decoder, normaliser with the
/// same registry, LineProtocol), in batches of the gateway's size, gzip-compressed as the gateway
/// sends them. Compression happens here, before the clock starts: case (b) measures InfluxDB.
/// </summary>
internal static class ExpectedLines
{
    public static List<byte[]> GzipBatches(IEnumerable<BenchMessage> messages, DeviceRegistryFile registryFile, string scratch, int batchSize)
    {
        var registry = DeviceRegistry.Build(registryFile, "benchmark");
        var normaliser = new Normaliser(() => registry, new NormalisationOptions());
        // The gateway's default route for flat JSON (appsettings.json).
        var route = new TopicRoute
        {
            Filter = "city/json/#", Format = "json", Qos = 1, Topic = "city/json/{domain}/{device}",
            DeviceField = "device", TimestampField = "ts", TimestampFormat = "auto",
        };
        var decoder = new DecoderCatalog().Get("json");
        using var quarantine = new QuarantineStore(Options.Create(new QuarantineOptions { Path = Path.Combine(scratch, "expected-quarantine.jsonl") }),
            NullLogger<QuarantineStore>.Instance);
        var readings = new List<Reading>();
        var points = new List<Point>();
        var buffer = new ArrayBufferWriter<byte>(1 << 20);
        var batches = new List<byte[]>();
        int inBatch = 0;
        long receivedNs = UnixTime.NowNs();
        foreach (var m in messages)
        {
            readings.Clear();
            points.Clear();
            var frame = new RawFrame("mqtt", m.Topic, m.Payload, receivedNs, 1, m.Payload.Length);
            var error = decoder.Decode(m.Payload, new DecodeContext(route, m.Topic, Topics.Capture(route.Topic, m.Topic), receivedNs), readings);
            if (error is not null) throw new InvalidOperationException($"{m.Topic}: {error.Reason} {error.Detail}");
            normaliser.Normalise(frame, route, readings, points, quarantine);
            if (points.Count != 1 || quarantine.Total > 0)
                throw new InvalidOperationException($"{m.Topic}: {points.Count} points, {quarantine.Total} quarantined (see {quarantine.FilePath})");
            LineProtocol.Write(buffer, points[0]);
            if (++inBatch == batchSize)
            {
                batches.Add(Gzip(buffer.WrittenSpan));
                buffer.Clear();
                inBatch = 0;
            }
        }
        if (inBatch > 0) batches.Add(Gzip(buffer.WrittenSpan));
        return batches;
    }

    private static byte[] Gzip(ReadOnlySpan<byte> lines)
    {
        var ms = new MemoryStream(lines.Length / 4 + 64);
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(lines);
        return ms.ToArray();
    }
}
