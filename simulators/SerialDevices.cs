namespace CityGateway.Simulators;

/// <summary>
/// The instruments of the serial mode, one per line format. Their values come from the same models as
/// the MQTT fleet's quality probes, loop detectors and air-quality stations.
/// </summary>
public static class SerialDeviceTypes
{
    /// <summary>kv lines: <c>dev=wq-s001 ph=7.21 turb=0.80 t=18.4 cl=0.42 seq=12</c>.</summary>
    public static readonly DeviceTypeSpec WaterQualityInstrument = new("wq-instrument", "water", "treatment-plant", 0,
    [
        new("ph", "pH", "pH", 2),
        new("turb", "turbidity", "NTU", 2),
        new("t", "temperature", "Cel", 1),
        new("cl", "chlorine", "mg/L", 2),
    ], rng => new QualityProbeModel(rng));

    /// <summary>csv lines: <c>trf-s001,1795264423154,13,47.5,26.1,12</c>
    /// (device, ts, count, speed_kmh, occ_pct, seq).</summary>
    public static readonly DeviceTypeSpec TrafficCounter = new("traffic-counter", "traffic", "road", 0,
    [
        new("count", "intensity", "count", 0),
        new("speed_kmh", "averageVehicleSpeed", "km/h", 1),
        new("occ_pct", "occupancy", "%", 1),
    ], rng => new TrafficCounterModel(rng));

    /// <summary>jsonl lines: <c>{"device":"env-s001","pm25":12.1,"pm10":20.3,"no2_ppb":17.2,"temp_f":64.1,"rh_pct":55.0,"seq":12}</c>.</summary>
    public static readonly DeviceTypeSpec AirQualitySerial = new("aq-serial", "environment", "bus-stop", 0,
    [
        new("pm25", "pm25", "ug/m3", 1),
        new("pm10", "pm10", "ug/m3", 1),
        new("no2_ppb", "no2", "ppb", 1),
        new("temp_f", "temperature", "degF", 1),
        new("rh_pct", "relativeHumidity", "%", 1),
    ], rng => new SerialAirQualityModel(rng));

    /// <summary>The device type writing lines of <paramref name="format"/> (kv, csv, jsonl).</summary>
    public static DeviceTypeSpec ForFormat(string format) => format switch
    {
        "kv" => WaterQualityInstrument,
        "csv" => TrafficCounter,
        "jsonl" => AirQualitySerial,
        _ => throw new ArgumentException($"unknown serial format '{format}'"),
    };

    /// <summary>Device id prefix of a format: wq-s, trf-s, env-s.</summary>
    public static string IdPrefix(string format) => format switch
    {
        "kv" => "wq-s",
        "csv" => "trf-s",
        "jsonl" => "env-s",
        _ => throw new ArgumentException($"unknown serial format '{format}'"),
    };

    /// <summary>Mixed into the seeds so that serial devices draw streams of their own, apart from the MQTT fleet's.</summary>
    internal static int SeedDomain(string format) => 16 + Array.IndexOf(SerialSimulatorOptions.AllFormats.ToArray(), format);
}

/// <summary>One instrument on the serial line.</summary>
public sealed class SerialDevice
{
    private readonly DeviceModel _model;
    private readonly double[] _values;

    internal SerialDevice(string id, int index, DeviceTypeSpec type, string district, string site, double latitude, double longitude, DeviceModel model)
    {
        Id = id;
        Index = index;
        Type = type;
        District = district;
        Site = site;
        Latitude = latitude;
        Longitude = longitude;
        _model = model;
        _values = new double[type.Fields.Count];
    }

    /// <summary>wq-s001, trf-s001, env-s001: the id written in the lines and the registry key.</summary>
    public string Id { get; }

    /// <summary>0-based position on the line.</summary>
    public int Index { get; }

    public DeviceTypeSpec Type { get; }

    public string Domain => Type.Domain;

    public string District { get; }

    public string Site { get; }

    public double Latitude { get; }

    public double Longitude { get; }

    /// <summary>Readings taken so far (intact, damaged or lost); the next one carries Sequence + 1.</summary>
    public long Sequence { get; private set; }

    internal long LastTimestampMs { get; private set; } = long.MinValue;

    /// <summary>Takes the next reading at wall time <paramref name="nowMs"/>: the sequence number, a
    /// timestamp strictly increasing by at least 1 ms, and the values rounded to the decimals written
    /// in the line. The daily profiles are evaluated at the timestamp in local time, or at
    /// <paramref name="curveTime"/> when given.</summary>
    internal (long Sequence, long TimestampMs, double[] Values) Next(long nowMs, DateTimeOffset? curveTime)
    {
        long ts = LastTimestampMs == long.MinValue ? nowMs : Math.Max(nowMs, LastTimestampMs + 1);
        LastTimestampMs = ts;
        Sequence++;
        var local = (curveTime ?? DateTimeOffset.FromUnixTimeMilliseconds(ts)).ToLocalTime().DateTime;
        _model.Sample(local, _values);
        var result = new double[_values.Length];
        for (int i = 0; i < result.Length; i++)
        {
            double v = Math.Round(_values[i], Type.Fields[i].Decimals, MidpointRounding.AwayFromZero);
            result[i] = v == 0 ? 0 : v; // no negative zero in lines
        }
        return (Sequence, ts, result);
    }

    /// <summary>Builds the devices of a serial run: ids, placement and value models depend on the seed only.</summary>
    internal static IReadOnlyList<SerialDevice> CreateAll(SerialSimulatorOptions o)
    {
        string format = o.NormalisedFormat();
        var type = SerialDeviceTypes.ForFormat(format);
        string prefix = SerialDeviceTypes.IdPrefix(format);
        int domain = SerialDeviceTypes.SeedDomain(format);
        var devices = new SerialDevice[o.Devices];
        var map = o.Map();
        for (int i = 0; i < devices.Length; i++)
        {
            var (district, site, lat, lon) = map.Place(new Random(Identifiers.DeviceSeed(o.Seed, domain, i, 1)), type);
            var model = type.CreateModel(new Random(Identifiers.DeviceSeed(o.Seed, domain, i, 2)));
            devices[i] = new SerialDevice($"{prefix}{i + 1:D3}", i, type, district, site, lat, lon, model);
        }
        return devices;
    }

    public override string ToString() => $"{Id} ({Type.Name})";
}

/// <summary>The loop detector's model with its fields in traffic-counter column order:
/// count, speed_kmh, occ_pct.</summary>
internal sealed class TrafficCounterModel : DeviceModel
{
    private readonly LoopDetectorModel _inner;
    private readonly double[] _loop = new double[3];

    public TrafficCounterModel(Random rng) : base(rng) => _inner = new LoopDetectorModel(rng);

    public override void Sample(DateTime local, Span<double> v)
    {
        _inner.Sample(local, _loop); // count, occ_pct, speed_kmh
        v[0] = _loop[0];
        v[1] = _loop[2];
        v[2] = _loop[1];
    }
}

/// <summary>The European air-quality station's model reported the way a US-style serial station
/// does: PM in ug/m3, NO2 in ppb, temperature in °F, humidity in percent.</summary>
internal sealed class SerialAirQualityModel : DeviceModel
{
    // ug/m3 per ppb at 25 °C and 1 atm: molar mass / 24.45 L/mol (the gateway converts back the same way).
    private const double No2PerPpb = 46.0055 / 24.45;

    private readonly AirQualityModel _inner;
    private readonly double[] _eu = new double[6];

    public SerialAirQualityModel(Random rng) : base(rng) => _inner = new AirQualityModel(rng, us: false);

    public override void Sample(DateTime local, Span<double> v)
    {
        _inner.Sample(local, _eu); // pm25, pm10, no2, o3 (ug/m3), temp (Cel), rh (fraction)
        v[0] = _eu[0];
        v[1] = _eu[1];
        v[2] = _eu[2] / No2PerPpb;
        v[3] = _eu[4] * 9 / 5 + 32;
        v[4] = _eu[5] * 100;
    }
}
