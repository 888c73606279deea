namespace CityGateway.Core;

/// <summary>
/// One message as a source received it. The receive time is stamped once, here, and travels
/// with the frame so that any later re-processing writes byte-identical points.
/// </summary>
public sealed class RawFrame
{
    public RawFrame(string source, string topic, byte[] payload, long receivedAtNs, int qos, int originalLength)
    {
        Source = source;
        Topic = topic;
        Payload = payload;
        ReceivedAtNs = receivedAtNs;
        _qos = (byte)Math.Clamp(qos, 0, 2);
        OriginalLength = originalLength;
    }

    // Small fields, so that a frame stays at 56 bytes: one is allocated for every message.
    private readonly byte _qos;
    private readonly ushort _deliveryId;

    /// <summary>"mqtt" or "serial"; with ":replay" appended for frames replayed from the quarantine.</summary>
    public string Source { get; }

    /// <summary>The source without the replay mark: which routes apply.</summary>
    public string SourceKind => Source.EndsWith(ReplaySuffix, StringComparison.Ordinal) ? Source[..^ReplaySuffix.Length] : Source;

    public bool IsReplay => Source.EndsWith(ReplaySuffix, StringComparison.Ordinal);

    public const string ReplaySuffix = ":replay";

    /// <summary>MQTT topic, or the serial port path.</summary>
    public string Topic { get; }

    /// <summary>Payload bytes; truncated when <see cref="IsTruncated"/>.</summary>
    public byte[] Payload { get; }

    /// <summary>Length of the payload as received, before any truncation.</summary>
    public int OriginalLength { get; }

    public bool IsTruncated => OriginalLength > Payload.Length;

    /// <summary>Receive time, Unix epoch nanoseconds.</summary>
    public long ReceivedAtNs { get; }

    public int Qos => _qos;

    /// <summary>The source's own id for this delivery, 0 when there is none: the packet identifier of a
    /// QoS 1/2 MQTT message. The journal keeps it, so that after a restart a message the broker delivers
    /// again (its acknowledgement had not left) is recognised as one already in the journal.</summary>
    public int DeliveryId
    {
        get => _deliveryId;
        init => _deliveryId = value is >= 0 and <= ushort.MaxValue ? (ushort)value : throw new ArgumentOutOfRangeException(nameof(value), value, "a delivery id is 0 to 65535");
    }
}
