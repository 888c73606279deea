using System.Text.Json.Serialization;

namespace CityGateway.Normalisation;

/// <summary>
/// The device registry file (JSON): which device belongs to which city, district, site and domain,
/// and per device type how source fields and units map to canonical metrics. See README, "Device registry".
/// </summary>
public sealed class DeviceRegistryFile
{
    /// <summary>City id used for devices that do not name their own.</summary>
    [JsonPropertyName("city")] public string? City { get; set; }

    [JsonPropertyName("deviceTypes")] public Dictionary<string, DeviceTypeEntry> DeviceTypes { get; set; } = new();

    [JsonPropertyName("devices")] public Dictionary<string, DeviceEntry> Devices { get; set; } = new();
}

public sealed class DeviceTypeEntry
{
    /// <summary>traffic, water or environment; this is also the InfluxDB measurement.</summary>
    [JsonPropertyName("domain")] public string Domain { get; set; } = "";

    /// <summary>Source field name (as the decoder reports it) to canonical metric and source unit.</summary>
    [JsonPropertyName("fields")] public Dictionary<string, FieldMapping> Fields { get; set; } = new();

    /// <summary>Source fields that are known and deliberately not stored (battery voltage, RSSI, ...).</summary>
    [JsonPropertyName("ignore")] public List<string> Ignore { get; set; } = [];
}

public sealed class FieldMapping
{
    /// <summary>Canonical metric name (see README, "Canonical metrics"), or a custom field name with custom = true.</summary>
    [JsonPropertyName("metric")] public string Metric { get; set; } = "";

    /// <summary>Unit of the source value, when the payload does not carry one (SenML "u" wins).</summary>
    [JsonPropertyName("unit")] public string? Unit { get; set; }

    /// <summary>Store a field that is not a canonical metric, as it is (no unit conversion, no bounds).</summary>
    [JsonPropertyName("custom")] public bool Custom { get; set; }

    /// <summary>For custom fields: float (default), integer, boolean or string.</summary>
    [JsonPropertyName("type")] public string? Type { get; set; }
}

public sealed class DeviceEntry
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";

    [JsonPropertyName("city")] public string? City { get; set; }

    [JsonPropertyName("district")] public string District { get; set; } = "";

    [JsonPropertyName("site")] public string Site { get; set; } = "";

    [JsonPropertyName("lat")] public double? Latitude { get; set; }

    [JsonPropertyName("lon")] public double? Longitude { get; set; }
}
