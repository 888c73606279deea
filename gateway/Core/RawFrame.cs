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
        Qos = qos;
        OriginalLength = originalLength;
    }

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

    public int Qos { get; }
}
