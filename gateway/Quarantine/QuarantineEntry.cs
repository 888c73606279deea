namespace CityGateway.Quarantine;

/// <summary>One quarantined frame or field, as stored in the quarantine file (one JSON object per line).</summary>
public sealed class QuarantineEntry
{
    /// <summary>Unique, time-ordered id, used to select entries for replay.</summary>
    public string? Id { get; init; }

    public DateTimeOffset Time { get; init; }
    /// <summary>Stable reason code (see README, "Quarantine reasons").</summary>
    public required string Reason { get; init; }
    public required string Detail { get; init; }
    public string? Source { get; init; }
    public string? Topic { get; init; }
    public string? Route { get; init; }
    public string? Device { get; init; }
    public string? Field { get; init; }
    /// <summary>Receive time of the frame, Unix ns; with the payload this is enough to replay it.</summary>
    public long? ReceivedAtNs { get; init; }
    /// <summary>The payload as UTF-8 text, or base64 when <see cref="PayloadEncoding"/> is "base64".</summary>
    public string? Payload { get; init; }
    public string? PayloadEncoding { get; init; }
    /// <summary>Payload size as received; larger than the stored payload when it was truncated.</summary>
    public int? PayloadBytes { get; init; }

    internal QuarantineEntry WithId(string id) => new()
    {
        Id = id, Time = Time, Reason = Reason, Detail = Detail, Source = Source, Topic = Topic, Route = Route, Device = Device,
        Field = Field, ReceivedAtNs = ReceivedAtNs, Payload = Payload, PayloadEncoding = PayloadEncoding, PayloadBytes = PayloadBytes,
    };
}
