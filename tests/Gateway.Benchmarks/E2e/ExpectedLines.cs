using System.Buffers;
using System.IO.Compression;
using CityGateway.Core;
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
/// gateway's own pipeline stage (<see cref="InProcessPipeline"/>: the shipped routes, the same
/// registry), in batches of the gateway's size, gzip-compressed as the gateway
/// sends them. Compression happens here, before the clock starts: case (b) measures InfluxDB.
/// </summary>
internal static class ExpectedLines
{
    public static List<byte[]> GzipBatches(IEnumerable<BenchMessage> messages, DeviceRegistryFile registryFile, string scratch, int batchSize)
    {
        using var pipeline = new InProcessPipeline(registryFile, Path.Combine(scratch, "expected-quarantine.jsonl"));
        var lines = new List<EncodedPoint>(8);
        var buffer = new ArrayBufferWriter<byte>(1 << 20);
        var batches = new List<byte[]>();
        int inBatch = 0;
        long receivedNs = UnixTime.ToNs(DateTimeOffset.UtcNow);
        foreach (var m in messages)
        {
            pipeline.Handle(new RawFrame("mqtt", m.Topic, m.Payload, receivedNs, 1, m.Payload.Length), lines);
            if (lines.Count != 1 || pipeline.Quarantine.Total > 0)
                throw new InvalidOperationException($"{m.Topic}: {lines.Count} points, {pipeline.Quarantine.Total} quarantined ({pipeline.QuarantineReasons})");
            buffer.Write(lines[0].Line);
            if (++inBatch == batchSize)
            {
                batches.Add(Gzip(buffer.WrittenSpan));
                buffer.Clear();
                pipeline.Lines.Release(lines[0].Chunk!);
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
