using System.Diagnostics.Metrics;

namespace CityGateway.Health;

/// <summary>
/// The gateway's own counters, as instruments of the meter "CityGateway" (exported by OpenTelemetry:
/// /metrics on the operator listener, OTLP when configured) and as the same counts read by
/// /readyz and the "gateway" measurement.
/// </summary>
/// <remarks>
/// The counts live in plain fields changed with one interlocked operation, and the counters are
/// observable instruments over those fields: the hot path costs what it did before, allocates
/// nothing, and every reader (exporter, /readyz, the gateway measurement) sees one and the same
/// number. Only the batch latency is a recorded instrument (a histogram), once per batch.
/// </remarks>
public sealed class GatewayMetrics
{
    /// <summary>Name of the gateway's meter, for exporters and tools such as dotnet-counters.</summary>
    public const string MeterName = "CityGateway";

    private long _empty;
    private long _received, _receivedBytes, _decoded, _pointsWritten, _batches, _writeFailures, _lastBatchLatencyUs;
    private readonly Histogram<double> _batchDuration;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create(MeterName);
        Meter.CreateObservableCounter("gateway.frames.received", () => Received, "{frame}",
            "Frames received from the sources (MQTT messages, serial lines), replays included");
        Meter.CreateObservableCounter("gateway.frames.received.size", () => ReceivedBytes, "By",
            "Payload bytes of the frames received");
        Meter.CreateObservableCounter("gateway.frames.decoded", () => Decoded, "{frame}",
            "Frames a decoder turned into readings or an empty result");
        Meter.CreateObservableCounter("gateway.frames.empty", () => EmptyFrames, "{frame}",
            "Frames that decoded to no readings (heartbeats, empty payload objects)");
        Meter.CreateObservableCounter("gateway.points.written", () => PointsWritten, "{point}",
            "Points InfluxDB accepted");
        Meter.CreateObservableCounter("gateway.batches.written", () => Batches, "{batch}",
            "Batches InfluxDB accepted");
        Meter.CreateObservableCounter("gateway.write.failures", () => WriteFailures, "{failure}",
            "Batch writes that failed and are retried from the journal");
        Meter.CreateObservableGauge("gateway.queue.depth", () => (long)QueueDepth(), "{frame}",
            "Frames in the journal not yet stored");
        _batchDuration = Meter.CreateHistogram("gateway.batch.write.duration", "s",
            "Time to write one batch to InfluxDB, successful writes only",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    /// <summary>The meter the gateway's instruments belong to (one per host, from its IMeterFactory).</summary>
    public Meter Meter { get; }

    public long Received => Interlocked.Read(ref _received);
    public long ReceivedBytes => Interlocked.Read(ref _receivedBytes);
    public long Decoded => Interlocked.Read(ref _decoded);
    public long PointsWritten => Interlocked.Read(ref _pointsWritten);
    public long Batches => Interlocked.Read(ref _batches);
    public long WriteFailures => Interlocked.Read(ref _writeFailures);
    public double LastBatchLatencyMs => Interlocked.Read(ref _lastBatchLatencyUs) / 1000.0;

    /// <summary>Current depth of the frame and point queues, set by the pipeline.</summary>
    public Func<int> QueueDepth { get; set; } = () => 0;

    public void FrameReceived(int bytes)
    {
        Interlocked.Increment(ref _received);
        Interlocked.Add(ref _receivedBytes, bytes);
    }

    public void FrameDecoded() => Interlocked.Increment(ref _decoded);

    /// <summary>Frames that decoded to no readings (heartbeats, empty payload objects).</summary>
    public long EmptyFrames => Interlocked.Read(ref _empty);

    public void EmptyFrame() => Interlocked.Increment(ref _empty);
    public void WriteFailed() => Interlocked.Increment(ref _writeFailures);

    public void BatchWritten(int points, TimeSpan latency)
    {
        Interlocked.Add(ref _pointsWritten, points);
        Interlocked.Increment(ref _batches);
        Interlocked.Exchange(ref _lastBatchLatencyUs, (long)(latency.TotalMilliseconds * 1000));
        _batchDuration.Record(latency.TotalSeconds);
    }
}
