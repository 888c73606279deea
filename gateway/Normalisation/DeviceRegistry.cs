using System.Text.Json;

namespace CityGateway.Normalisation;

/// <summary>How one source field of a device type becomes an InfluxDB field.</summary>
public sealed class ResolvedField
{
    public required string SourceName { get; init; }
    /// <summary>The InfluxDB field name: the canonical metric, or the custom name.</summary>
    public required string FieldName { get; init; }
    /// <summary>The canonical metric; null for a custom field.</summary>
    public MetricDefinition? Metric { get; init; }
    /// <summary>Unit of the source value when the payload does not name one.</summary>
    public string? DefaultUnit { get; init; }
    /// <summary>Custom fields: float, integer, boolean or string.</summary>
    public string CustomType { get; init; } = "float";
    public bool Ignored { get; init; }

    /// <summary>The unit conversion the normaliser used last for this field (units repeat message after message).</summary>
    internal Conversion? LastConversion;

    internal sealed record Conversion(UnitTable Units, string? Unit, bool Known, UnitTable.Converter Converter);
}

public sealed class DeviceType
{
    public required string Name { get; init; }
    public required string Domain { get; init; }
    public required Dictionary<string, ResolvedField> Fields { get; init; }
}

/// <summary>A registered device with everything the normaliser needs, resolved once at load.</summary>
public sealed class RegisteredDevice
{
    public required string Id { get; init; }
    public required string City { get; init; }
    public required string District { get; init; }
    public required string Site { get; init; }
    public required DeviceType Type { get; init; }
    public double? Latitude { get; init; }
    public double? Longitude { get; init; }
    public string Domain => Type.Domain;

    /// <summary>The device's series, built when its first point is made (so idle devices cost nothing).</summary>
    internal DeviceSeries? Series;
}

public sealed class RegistryException(string message) : Exception(message);

/// <summary>
/// The device registry, loaded from a JSON file and validated as a whole: a file with any error is
/// refused with every error listed, and the previous registry stays in force.
/// </summary>
public sealed class DeviceRegistry
{
    private readonly Dictionary<string, RegisteredDevice> _devices;

    private DeviceRegistry(Dictionary<string, RegisteredDevice> devices, string source)
    {
        _devices = devices;
        Source = source;
    }

    public string Source { get; }

    public int Count => _devices.Count;

    public IEnumerable<RegisteredDevice> Devices => _devices.Values;

    public bool TryGet(string deviceId, out RegisteredDevice device) => _devices.TryGetValue(deviceId, out device!);

    public static DeviceRegistry LoadFile(string path, MetricCatalog? catalog = null, UnitTable? units = null)
    {
        DeviceRegistryFile? file;
        try
        {
            using var stream = File.OpenRead(path);
            file = JsonSerializer.Deserialize<DeviceRegistryFile>(stream, new JsonSerializerOptions
            {
                ReadCommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"cannot read the device registry '{path}': {e.Message}");
        }
        catch (JsonException e)
        {
            throw new RegistryException($"the device registry '{path}' is not valid JSON: {e.Message}");
        }
        if (file is null) throw new RegistryException($"the device registry '{path}' is empty");
        return Build(file, path, catalog, units);
    }

    public static DeviceRegistry Build(DeviceRegistryFile file, string source, MetricCatalog? catalog = null, UnitTable? units = null)
    {
        catalog ??= MetricCatalog.Default;
        units ??= UnitTable.Default;
        var errors = new List<string>();
        var types = new Dictionary<string, DeviceType>(StringComparer.Ordinal);
        foreach (var (typeName, t) in file.DeviceTypes)
        {
            if (!MetricCatalog.Domains.Contains(t.Domain))
            {
                errors.Add($"deviceTypes.{typeName}.domain: '{t.Domain}' is not one of {string.Join(", ", MetricCatalog.Domains)}");
                continue;
            }
            var fields = new Dictionary<string, ResolvedField>(StringComparer.Ordinal);
            foreach (var (src, map) in t.Fields)
            {
                var key = $"deviceTypes.{typeName}.fields.{src}";
                if (string.IsNullOrWhiteSpace(map.Metric)) { errors.Add($"{key}.metric: missing"); continue; }
                if (map.Custom)
                {
                    var type = map.Type ?? "float";
                    if (type is not ("float" or "integer" or "boolean" or "string"))
                        errors.Add($"{key}.type: '{type}' is not float, integer, boolean or string");
                    else if (catalog.TryGet(t.Domain, map.Metric, out _))
                        errors.Add($"{key}: '{map.Metric}' is a canonical metric; custom fields must use other names");
                    else
                        fields[src] = new ResolvedField { SourceName = src, FieldName = map.Metric, CustomType = type };
                    continue;
                }
                if (!catalog.TryGet(t.Domain, map.Metric, out var metric))
                {
                    errors.Add($"{key}.metric: '{map.Metric}' is not a canonical {t.Domain} metric (set \"custom\": true to store it as is)");
                    continue;
                }
                if (map.Unit is not null && !units.TryGetConverter(map.Unit, metric, out _))
                {
                    errors.Add($"{key}.unit: no conversion from '{map.Unit}' to {metric.Name}'s unit '{metric.Unit}'");
                    continue;
                }
                fields[src] = new ResolvedField { SourceName = src, FieldName = metric.Name, Metric = metric, DefaultUnit = map.Unit };
            }
            foreach (var ignored in t.Ignore)
                fields.TryAdd(ignored, new ResolvedField { SourceName = ignored, FieldName = ignored, Ignored = true });
            types[typeName] = new DeviceType { Name = typeName, Domain = t.Domain, Fields = fields };
        }

        var devices = new Dictionary<string, RegisteredDevice>(StringComparer.Ordinal);
        foreach (var (id, d) in file.Devices)
        {
            var key = $"devices.{id}";
            if (!types.TryGetValue(d.Type, out var type))
            {
                if (!file.DeviceTypes.ContainsKey(d.Type)) errors.Add($"{key}.type: unknown device type '{d.Type}'");
                continue;
            }
            var city = d.City ?? file.City;
            if (string.IsNullOrWhiteSpace(city)) errors.Add($"{key}.city: missing, and the registry has no default 'city'");
            if (string.IsNullOrWhiteSpace(d.District)) errors.Add($"{key}.district: missing");
            foreach (var (name, value) in new[] { ("id", id), ("city", city), ("district", d.District), ("site", d.Site) })
                if (value is not null && value.Any(char.IsControl)) errors.Add($"{key}.{name}: contains control characters");
            devices[id] = new RegisteredDevice
            {
                Id = id, City = city ?? "", District = d.District, Site = d.Site, Type = type,
                Latitude = d.Latitude, Longitude = d.Longitude,
            };
        }
        if (errors.Count > 0)
            throw new RegistryException($"the device registry '{source}' has {errors.Count} error(s):\n  " + string.Join("\n  ", errors.Take(50)));
        return new DeviceRegistry(devices, source);
    }
}
