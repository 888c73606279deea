using System.Text.Json;
using CityGateway.Core;

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
    /// <summary>A custom field declared with a unit: its canonical unit and resolution, as a metric
    /// without bounds, so its values are converted like a canonical metric's. Null otherwise.</summary>
    public MetricDefinition? CustomUnit { get; init; }
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

/// <summary>A registry refused; <see cref="Failures"/> lists each problem (one line each, or one per file).</summary>
public sealed class RegistryException : Exception
{
    public RegistryException(string message) : base(message)
    {
        Failures = [message];
    }

    public RegistryException(IReadOnlyList<string> failures) : base(string.Join("\n", failures))
    {
        Failures = failures;
    }

    public IReadOnlyList<string> Failures { get; }
}

/// <summary>
/// The device registry, loaded from one or more JSON files and validated as a whole: a file with any
/// error is refused with every error listed, and the previous registry stays in force.
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

    /// <summary>
    /// Loads and validates a registry file. The file is streamed: each device goes straight into the
    /// registry, and strings that repeat across devices (type, city, district, site) are kept once,
    /// so loading 100,000 devices needs little more memory than the registry it builds.
    /// </summary>
    public static DeviceRegistry LoadFile(string path, MetricCatalog? catalog = null, UnitTable? units = null) =>
        LoadFile(path, catalog ?? MetricCatalog.Default, units ?? UnitTable.Default, new RegistryInterner());

    private static DeviceRegistry LoadFile(string path, MetricCatalog catalog, UnitTable units, RegistryInterner strings)
    {
        DeviceRegistry? registry;
        try
        {
            // No FileStream buffer: the reader reads 64 KiB at a time itself.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
            registry = DeviceRegistryReader.Read(stream, path, catalog, units, strings);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException($"cannot read the device registry '{path}': {e.Message}");
        }
        catch (JsonException e)
        {
            throw new RegistryException($"the device registry '{path}' is not valid JSON: {e.Message}");
        }
        return registry ?? throw new RegistryException($"the device registry '{path}' is empty");
    }

    /// <summary>
    /// Loads several registry files, each streamed and validated on its own (its device types and
    /// its default city are its own), and returns the union of their devices. Refused, with every
    /// failure listed and each prefixed by the file's key, when any file is refused or when a device
    /// id is in more than one file. One file gives exactly what <see cref="LoadFile(string, MetricCatalog?, UnitTable?)"/> gives.
    /// </summary>
    public static DeviceRegistry LoadFiles(IReadOnlyList<RegistryFile> files, MetricCatalog? catalog = null, UnitTable? units = null)
    {
        if (files.Count == 0) throw new ArgumentException("no device registry file given", nameof(files));
        catalog ??= MetricCatalog.Default;
        units ??= UnitTable.Default;
        // Shared, so that a district or site named in several files is one string.
        var strings = new RegistryInterner();
        var parts = new DeviceRegistry?[files.Count];
        var failures = new List<string>();
        for (int i = 0; i < files.Count; i++)
        {
            try { parts[i] = LoadFile(files[i].Path, catalog, units, strings); }
            catch (RegistryException e) { failures.Add($"{files[i].Key}: {e.Message}"); }
        }
        if (parts is [{ } only]) return only;

        // The parts' devices are shared, not copied: only the dictionary is new (the parts' own are
        // garbage once this returns). The files that were read are compared even when another was
        // refused, so that every failure is listed at once.
        int total = 0;
        foreach (var p in parts) total += p?.Count ?? 0;
        var devices = new Dictionary<string, RegisteredDevice>(total, StringComparer.Ordinal);
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i] is not { } part) continue;
            // Ids of this file that an earlier file has already, by that file.
            SortedDictionary<int, List<string>>? clashes = null;
            foreach (var device in part.Devices)
            {
                if (devices.TryAdd(device.Id, device)) continue;
                int owner = 0;
                while (parts[owner] is not { } earlier || !earlier.TryGet(device.Id, out _)) owner++;
                clashes ??= [];
                if (!clashes.TryGetValue(owner, out var ids)) clashes[owner] = ids = [];
                ids.Add(device.Id);
            }
            if (clashes is null) continue;
            foreach (var (owner, ids) in clashes)
            {
                const int Shown = 20;
                var named = string.Join(", ", ids.Take(Shown).Select(id => $"'{id}'"));
                if (ids.Count > Shown) named += $" and {ids.Count - Shown} more";
                failures.Add($"{files[i].Key}: {ids.Count} device id(s) in '{files[i].Path}' are also in '{files[owner].Path}' ({files[owner].Key}): " +
                             $"{named}; a device may be registered in one file only, remove it from one of them");
            }
        }
        if (failures.Count > 0) throw new RegistryException(failures);
        return new DeviceRegistry(devices, string.Join(", ", files.Select(f => f.Path)));
    }

    public static DeviceRegistry Build(DeviceRegistryFile file, string source, MetricCatalog? catalog = null, UnitTable? units = null)
    {
        var builder = new Builder(file.DeviceTypes, new RegistryInterner(), [], catalog ?? MetricCatalog.Default, units ?? UnitTable.Default)
        {
            DefaultCity = file.City,
        };
        foreach (var (id, d) in file.Devices) builder.Add(id, d);
        return builder.Finish(source);
    }

    /// <summary>
    /// Resolves device types and devices one at a time, collecting every error; <see cref="Finish"/>
    /// refuses the registry if there was any. Shared by <see cref="Build"/> and the streaming reader.
    /// </summary>
    internal sealed class Builder
    {
        private readonly IReadOnlyDictionary<string, DeviceTypeEntry> _typeEntries;
        private readonly Dictionary<string, DeviceType> _types = new(StringComparer.Ordinal);
        private readonly Dictionary<string, RegisteredDevice> _devices = new(StringComparer.Ordinal);
        private readonly RegistryInterner _strings;
        private readonly List<string> _errors;

        public Builder(IReadOnlyDictionary<string, DeviceTypeEntry> typeEntries, RegistryInterner strings, List<string> errors,
            MetricCatalog catalog, UnitTable units)
        {
            _typeEntries = typeEntries;
            _strings = strings;
            _errors = errors;
            foreach (var (typeName, t) in typeEntries)
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
                        // Any domain: a dashboard or partner feed reading "temperature" must get the canonical one.
                        else if (catalog.DomainsWith(map.Metric).ToList() is { Count: > 0 } domains)
                            errors.Add($"{key}: '{map.Metric}' is a canonical metric ({string.Join(", ", domains)}); custom fields must use other names");
                        else if (CustomUnit(key, typeName, map, type, t.Domain, catalog, units, errors, out var unit))
                            fields[src] = new ResolvedField { SourceName = src, FieldName = map.Metric, CustomType = type, DefaultUnit = map.Unit, CustomUnit = unit };
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
                _types[typeName] = new DeviceType { Name = typeName, Domain = t.Domain, Fields = fields };
            }
        }

        /// <summary>
        /// The canonical unit of a custom field declared with a unit (null without one); false, with
        /// the error listed, when its values could not be stored in a canonical unit.
        /// </summary>
        private static bool CustomUnit(string key, string typeName, FieldMapping map, string type, string domain,
            MetricCatalog catalog, UnitTable units, List<string> errors, out MetricDefinition? unit)
        {
            unit = null;
            if (map.Unit is null) return true;
            var where = $"{key}.unit: custom field '{map.Metric}' of device type '{typeName}'";
            if (type is not ("float" or "integer"))
            {
                errors.Add($"{where}: a unit needs type float or integer, not {type}");
                return false;
            }
            if (!units.TryGetCanonicalUnit(map.Unit, catalog.Units, out var canonical, out var why))
            {
                errors.Add($"{where}: {why}; declare a canonical unit, or no unit to store the values as sent");
                return false;
            }
            if (type == "integer" && canonical != units.Canonicalise(map.Unit))
            {
                errors.Add($"{where}: '{map.Unit}' converts to '{canonical}', which an integer cannot hold exactly; use type float, or declare '{canonical}'");
                return false;
            }
            unit = new MetricDefinition(domain, map.Metric, canonical, double.NegativeInfinity, double.PositiveInfinity, null, "custom field")
            {
                Decimals = catalog.DecimalsOf(canonical),
            };
            return true;
        }

        /// <summary>City of the devices that do not name their own (the file's "city").</summary>
        public string? DefaultCity { get; set; }

        /// <summary>Adds one device; <paramref name="d"/> is not kept, so a reader may reuse it.</summary>
        public void Add(string id, DeviceEntry d)
        {
            var typeName = d.Type ?? "";
            if (!_types.TryGetValue(typeName, out var type))
            {
                // A device of a type that has errors of its own is not reported again.
                if (!_typeEntries.ContainsKey(typeName)) _errors.Add($"devices.{id}.type: unknown device type '{typeName}'");
                return;
            }
            var city = d.City ?? DefaultCity;
            if (string.IsNullOrWhiteSpace(city)) _errors.Add($"devices.{id}.city: missing, and the registry has no default 'city'");
            if (string.IsNullOrWhiteSpace(d.District)) _errors.Add($"devices.{id}.district: missing");
            CheckControl(id, "id", id);
            CheckControl(id, "city", city);
            CheckControl(id, "district", d.District);
            CheckControl(id, "site", d.Site);
            _devices[id] = new RegisteredDevice
            {
                Id = id,
                City = _strings.Intern(city ?? ""),
                District = _strings.Intern(d.District ?? ""),
                Site = _strings.Intern(d.Site ?? ""),
                Type = type,
                Latitude = d.Latitude,
                Longitude = d.Longitude,
            };
        }

        public DeviceRegistry Finish(string source)
        {
            if (_errors.Count > 0)
                throw new RegistryException($"the device registry '{source}' has {_errors.Count} error(s):\n  " + string.Join("\n  ", _errors.Take(50)));
            return new DeviceRegistry(_devices, source);
        }

        private void CheckControl(string id, string name, string? value)
        {
            if (value is null) return;
            foreach (var c in value)
            {
                if (!char.IsControl(c)) continue;
                _errors.Add($"devices.{id}.{name}: contains control characters");
                return;
            }
        }
    }
}
