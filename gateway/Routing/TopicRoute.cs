namespace CityGateway.Routing;

/// <summary>
/// One configured route: which MQTT topic filter, which payload format, and how the topic's
/// levels and the payload's keys map to a device, a timestamp and tags.
/// </summary>
public sealed class TopicRoute
{
    /// <summary>MQTT topic filter, with + and # wildcards. Serial routes use the port path.</summary>
    public string Filter { get; set; } = "";

    /// <summary>Payload format: json, senml, chirpstack, tts.</summary>
    public string Format { get; set; } = "";

    /// <summary>QoS used for the subscription (0, 1 or 2).</summary>
    public int Qos { get; set; } = 1;

    /// <summary>Optional topic template naming levels, e.g. city/{domain}/{district}/{device}.
    /// A level {device} supplies the device id when the payload has none.</summary>
    public string? Topic { get; set; }

    /// <summary>Flat JSON: key holding the device id.</summary>
    public string DeviceField { get; set; } = "device";

    /// <summary>Flat JSON: key holding the timestamp.</summary>
    public string TimestampField { get; set; } = "ts";

    /// <summary>auto, unix_s, unix_ms, unix_us, unix_ns or iso8601.</summary>
    public string TimestampFormat { get; set; } = "auto";

    /// <summary>Flat JSON: keys whose values become tags rather than fields.</summary>
    public List<string> TagFields { get; set; } = ["lane", "vehicleType"];

    /// <summary>LoRaWAN: which identifier names the device: devEui or name (ChirpStack deviceName,
    /// TTS device_id).</summary>
    public string DeviceIdFrom { get; set; } = "auto";

    /// <summary>Which source's frames this route takes: mqtt, or serial (serial routes come from Gateway:Serial:Ports).</summary>
    public string Source { get; set; } = "mqtt";

    /// <summary>Text line formats (csv): the column names, in order.</summary>
    public List<string> Columns { get; set; } = [];

    /// <summary>Text line formats (csv): the separator.</summary>
    public string Delimiter { get; set; } = ",";

    /// <summary>Text line formats: the NMEA-style *hh checksum policy.</summary>
    public ChecksumPolicy Checksum { get; set; } = ChecksumPolicy.Optional;

    public override string ToString() => $"{Format}:{Filter}";
}

/// <summary>What a text line route does with a trailing NMEA-style *hh checksum.</summary>
public enum ChecksumPolicy
{
    /// <summary>No checksum: a trailing *hh is part of the data.</summary>
    None,
    /// <summary>Verify a trailing *hh when present; lines without one are accepted.</summary>
    Optional,
    /// <summary>Every line must end in a valid *hh.</summary>
    Required,
}
