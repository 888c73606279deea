namespace CityGateway.Decoding;

public enum ReadingKind : byte
{
    Number,
    Boolean,
    Text,
    /// <summary>The field was present but its value cannot be used; <see cref="Reading.Error"/> says why.</summary>
    Invalid,
}

/// <summary>
/// One measured value as the device reported it: source field name, source unit, device time.
/// Normalisation turns readings into canonical InfluxDB fields.
/// </summary>
public readonly struct Reading
{
    public required string DeviceId { get; init; }
    public required string Field { get; init; }
    public ReadingKind Kind { get; init; }
    public double Number { get; init; }
    public bool Boolean { get; init; }
    public string? Text { get; init; }
    /// <summary>Unit as given in the payload (SenML "u"), or null when the payload does not say.</summary>
    public string? Unit { get; init; }
    /// <summary>Device timestamp, Unix epoch nanoseconds, or null when the payload has none.</summary>
    public long? TimestampNs { get; init; }
    /// <summary>Extra tags carried by the message (lane, vehicleType), shared by its readings.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Tags { get; init; }
    /// <summary>Quarantine reason for an <see cref="ReadingKind.Invalid"/> reading.</summary>
    public string? ErrorReason { get; init; }
    public string? Error { get; init; }

    public static Reading Invalid(string deviceId, string field, string reason, string error, long? ts = null) => new()
    {
        DeviceId = deviceId, Field = field, Kind = ReadingKind.Invalid, ErrorReason = reason, Error = error, TimestampNs = ts,
    };
}
