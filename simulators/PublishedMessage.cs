namespace CityGateway.Simulators;

/// <summary>One message as the simulator produced and published it.</summary>
public sealed class PublishedMessage
{
    /// <summary>The device id the gateway sees and the registry key: the DevEUI for ChirpStack
    /// devices, otherwise the plain device id (trf-0001).</summary>
    public required string Device { get; init; }

    /// <summary>The plain device id (trf-0001), whatever the format.</summary>
    public required string DeviceName { get; init; }

    public required string DeviceType { get; init; }

    /// <summary>traffic, water or environment (also the InfluxDB measurement).</summary>
    public required string Domain { get; init; }

    /// <summary>json, senml, chirpstack or tts.</summary>
    public required string Format { get; init; }

    public required string Topic { get; init; }

    public required byte[] Payload { get; init; }

    /// <summary>The device timestamp written in the payload, Unix epoch nanoseconds (whole milliseconds).</summary>
    public long TimestampNs { get; init; }

    /// <summary>Per-device sequence number, starting at 1; also sent as the "seq" field.</summary>
    public long Sequence { get; init; }

    /// <summary>Source field names and numeric values exactly as written in the payload, "seq" included.</summary>
    public required IReadOnlyDictionary<string, double> SourceValues { get; init; }

    /// <summary>Tags carried by the payload (flat JSON traffic messages: lane, vehicleType).</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = EmptyTags;

    private static readonly IReadOnlyDictionary<string, string> EmptyTags = new Dictionary<string, string>();

    public override string ToString() => $"{Topic} #{Sequence}";
}
