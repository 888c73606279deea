namespace CityGateway.Health;

/// <summary>The gateway's own counters, written to the "gateway" measurement and shown in /readyz.</summary>
public sealed class GatewayMetrics
{
    private long _empty;
    private long _received, _receivedBytes, _decoded, _pointsWritten, _batches, _writeFailures, _lastBatchLatencyUs;

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
    }
}

/// <summary>Connection state of the broker and InfluxDB, for /readyz and the gateway measurement.</summary>
public sealed class GatewayHealth
{
    public volatile bool BrokerConnected;
    public volatile string BrokerDetail = "not connected yet";
    public volatile bool InfluxReachable;
    public volatile string InfluxDetail = "not checked yet";
    /// <summary>InfluxDB refused our credentials (401/403): writing is stopped until it accepts them.</summary>
    public volatile bool InfluxUnauthorised;
    /// <summary>The MQTT subscriptions of the current connection as the broker answered them (replaced whole).</summary>
    public volatile SubscriptionStatus[] Subscriptions = [];
}

/// <summary>One MQTT subscription: the filter as sent (shared form included), the QoS asked for, and
/// the broker's answer: <c>pending</c>, <c>granted</c> (with the QoS granted) or <c>refused</c> (with the reason).</summary>
public sealed record SubscriptionStatus(string Filter, int Qos, string State, int? GrantedQos = null, string? Reason = null)
{
    public bool Refused => State == "refused";
}
