namespace CityGateway.Simulators;

/// <summary>A source field of a device type: its name in the payload, the canonical metric it maps to, and its unit.</summary>
public sealed record SourceField(string Name, string Metric, string Unit, int Decimals);

/// <summary>
/// A simulated device type: the fields it reports, in payload order, and how its values evolve.
/// Units differ between types on purpose so that the gateway's unit conversion is exercised.
/// </summary>
public sealed class DeviceTypeSpec
{
    internal DeviceTypeSpec(string name, string domain, string sitePrefix, int fPort, SourceField[] fields, Func<Random, DeviceModel> createModel)
    {
        Name = name;
        Domain = domain;
        SitePrefix = sitePrefix;
        FPort = fPort;
        Fields = fields;
        CreateModel = createModel;
    }

    public string Name { get; }

    /// <summary>traffic, water or environment.</summary>
    public string Domain { get; }

    /// <summary>Prefix of the site names of devices of this type (crossing-12).</summary>
    public string SitePrefix { get; }

    /// <summary>LoRaWAN application port used for this type.</summary>
    public int FPort { get; }

    public IReadOnlyList<SourceField> Fields { get; }

    internal Func<Random, DeviceModel> CreateModel { get; }
}

/// <summary>The device types per domain.</summary>
public static class DeviceTypes
{
    public static readonly string[] Domains = ["traffic", "water", "environment"];

    public static readonly DeviceTypeSpec LoopDetector = new("loop-detector", "traffic", "crossing", 10,
    [
        new("count", "intensity", "count", 0),
        new("occ_pct", "occupancy", "%", 1),
        new("speed_kmh", "averageVehicleSpeed", "km/h", 1),
    ], rng => new LoopDetectorModel(rng));

    public static readonly DeviceTypeSpec TrafficCamera = new("traffic-camera", "traffic", "junction", 11,
    [
        new("vehicles", "intensity", "count", 0),
        new("speed_mph", "averageVehicleSpeed", "mph", 1),
        new("occupancy", "occupancy", "/", 3),
    ], rng => new TrafficCameraModel(rng));

    public static readonly DeviceTypeSpec FlowMeter = new("flow-meter", "water", "pump-station", 20,
    [
        new("flow_lps", "flow", "L/s", 2),
        new("pressure_kpa", "pressure", "kPa", 1),
    ], rng => new FlowMeterModel(rng));

    public static readonly DeviceTypeSpec PressureLogger = new("pressure-logger", "water", "reservoir", 21,
    [
        new("pressure_psi", "pressure", "psi", 2),
        new("level_cm", "waterLevel", "cm", 1),
    ], rng => new PressureLoggerModel(rng));

    public static readonly DeviceTypeSpec QualityProbe = new("quality-probe", "water", "treatment-plant", 22,
    [
        new("pH", "pH", "pH", 2),
        new("turbidity", "turbidity", "NTU", 2),
        new("temp_c", "temperature", "Cel", 2),
        new("chlorine", "chlorine", "mg/L", 3),
    ], rng => new QualityProbeModel(rng));

    public static readonly DeviceTypeSpec AirQualityEu = new("aq-station-eu", "environment", "school", 30,
    [
        new("pm25", "pm25", "ug/m3", 1),
        new("pm10", "pm10", "ug/m3", 1),
        new("no2", "no2", "ug/m3", 1),
        new("o3", "o3", "ug/m3", 1),
        new("temp", "temperature", "Cel", 1),
        new("rh", "relativeHumidity", "/", 3),
    ], rng => new AirQualityModel(rng, us: false));

    public static readonly DeviceTypeSpec AirQualityUs = new("aq-station-us", "environment", "park", 31,
    [
        new("pm25", "pm25", "ug/m3", 1),
        new("no2_ppb", "no2", "ppb", 1),
        new("o3_ppb", "o3", "ppb", 1),
        new("co_ppm", "co", "ppm", 3),
        new("temp_f", "temperature", "degF", 1),
        new("rh_pct", "relativeHumidity", "%", 1),
    ], rng => new AirQualityModel(rng, us: true));

    public static readonly DeviceTypeSpec NoiseMeter = new("noise-meter", "environment", "square", 32,
    [
        new("LAeq", "LAeq", "dBA", 1),
        new("LAmax", "LAmax", "dBA", 1),
    ], rng => new NoiseMeterModel(rng));

    /// <summary>Device types per domain, in the order they are handed out.</summary>
    public static IReadOnlyList<DeviceTypeSpec> ForDomain(string domain) => domain switch
    {
        "traffic" => [LoopDetector, TrafficCamera],
        "water" => [FlowMeter, PressureLogger, QualityProbe],
        "environment" => [AirQualityEu, AirQualityUs, NoiseMeter],
        _ => throw new ArgumentException($"unknown domain '{domain}'"),
    };

    public static IEnumerable<DeviceTypeSpec> All => Domains.SelectMany(ForDomain);

    /// <summary>The custom per-device sequence number field every message carries.</summary>
    public const string SequenceField = "seq";
}
