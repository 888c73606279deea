namespace CityGateway.Simulators;

/// <summary>
/// Daily profiles shared by the device models, as functions of the local hour of day (0..24).
/// </summary>
internal static class DailyCurves
{
    /// <summary>Bell curve around <paramref name="centre"/>, wrapping around midnight.</summary>
    public static double Bell(double hour, double centre, double width)
    {
        double d = Math.Abs(hour - centre);
        d = Math.Min(d, 24 - d);
        return Math.Exp(-0.5 * d * d / (width * width));
    }

    /// <summary>Relative traffic volume: morning and evening rush hours, a midday plateau, quiet nights.
    /// About 1 at the morning peak on a working day.</summary>
    public static double Traffic(DateTime local)
    {
        double h = local.TimeOfDay.TotalHours;
        bool weekend = local.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
        double rush = weekend ? 0.3 : 1.0;
        return 0.06
            + rush * (0.85 * Bell(h, 8.0, 1.1) + 0.75 * Bell(h, 17.5, 1.4))
            + (weekend ? 0.5 : 0.35) * Bell(h, 13.0, 2.8);
    }

    /// <summary>Relative drinking-water demand: morning peak, smaller evening peak, low at night.</summary>
    public static double WaterDemand(DateTime local)
    {
        double h = local.TimeOfDay.TotalHours;
        bool weekend = local.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
        double morning = weekend ? Bell(h, 9.5, 1.8) : Bell(h, 7.3, 1.3);
        return 0.25 + 0.75 * morning + 0.5 * Bell(h, 19.5, 2.0) + 0.25 * Bell(h, 13.0, 2.5);
    }

    /// <summary>Diurnal temperature shape in -1..1: coldest around 03:00, warmest around 15:00.</summary>
    public static double Temperature(DateTime local) =>
        Math.Sin(2 * Math.PI * (local.TimeOfDay.TotalHours - 9.0) / 24.0);

    /// <summary>Sunlight in 0..1 between 06:00 and 20:00 (drives ozone).</summary>
    public static double Sun(DateTime local)
    {
        double h = local.TimeOfDay.TotalHours;
        return h is > 6 and < 20 ? Math.Sin(Math.PI * (h - 6) / 14) : 0;
    }

    /// <summary>Human activity in 0..1 (drives noise): quiet from midnight to 05:00, busy in the day.</summary>
    public static double Activity(DateTime local)
    {
        double h = local.TimeOfDay.TotalHours;
        double day = 1 / (1 + Math.Exp(-(h - 6.5) * 1.8)) * (1 / (1 + Math.Exp((h - 22.5) * 1.5)));
        return Math.Clamp(0.1 + 0.6 * day + 0.3 * Math.Min(1, Traffic(local)), 0, 1);
    }
}

/// <summary>
/// The value generator of one device. It owns the device's random stream, so values depend only on
/// the seed and on the local times they are sampled at.
/// </summary>
internal abstract class DeviceModel
{
    protected readonly Random Rng;

    protected DeviceModel(Random rng) => Rng = rng;

    /// <summary>Writes one value per source field of the type, in field order.</summary>
    public abstract void Sample(DateTime local, Span<double> values);

    protected double Uniform(double min, double max) => min + (max - min) * Rng.NextDouble();

    /// <summary>Standard normal sample (Box-Muller).</summary>
    protected double Gauss()
    {
        double u1 = 1.0 - Rng.NextDouble();
        double u2 = Rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>One step of a mean-reverting random walk, for slowly drifting disturbances.</summary>
    protected double Drift(double state, double reversion, double step) => state * (1 - reversion) + step * Gauss();
}

internal sealed class LoopDetectorModel : DeviceModel
{
    private readonly double _capacity;   // vehicles per observation period at the rush-hour peak
    private readonly double _freeFlow;   // km/h on an empty road
    private double _disturbance;

    public LoopDetectorModel(Random rng) : base(rng)
    {
        _capacity = Uniform(18, 34);
        _freeFlow = Uniform(42, 62);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        _disturbance = Drift(_disturbance, 0.1, 0.03);
        double load = Math.Max(0, DailyCurves.Traffic(local) * (1 + _disturbance));
        double mean = _capacity * load;
        double count = Math.Max(0, Math.Round(mean + Math.Sqrt(mean + 0.25) * Gauss()));
        double occupancy = Math.Clamp(0.01 + 0.55 * Math.Pow(load, 1.6) + 0.015 * Gauss(), 0, 0.97);
        double speed = Math.Max(4, _freeFlow * (1 - 0.55 * Math.Min(1.2, load * load)) + 2.5 * Gauss());
        v[0] = count;
        v[1] = occupancy * 100;
        v[2] = speed;
    }
}

internal sealed class TrafficCameraModel : DeviceModel
{
    private readonly double _capacity;
    private readonly double _freeFlow;
    private double _disturbance;

    public TrafficCameraModel(Random rng) : base(rng)
    {
        _capacity = Uniform(30, 64); // counts all lanes in view
        _freeFlow = Uniform(48, 75);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        _disturbance = Drift(_disturbance, 0.1, 0.03);
        double load = Math.Max(0, DailyCurves.Traffic(local) * (1 + _disturbance));
        double mean = _capacity * load;
        double vehicles = Math.Max(0, Math.Round(mean + Math.Sqrt(mean + 0.25) * Gauss()));
        double speedKmh = Math.Max(5, _freeFlow * (1 - 0.6 * Math.Min(1.2, load * load)) + 3 * Gauss());
        double occupancy = Math.Clamp(0.008 + 0.5 * Math.Pow(load, 1.7) + 0.012 * Gauss(), 0, 0.95);
        v[0] = vehicles;
        v[1] = speedKmh / 1.609344;
        v[2] = occupancy;
    }
}

internal sealed class FlowMeterModel : DeviceModel
{
    private readonly double _nominalLps;
    private readonly double _staticKpa;
    private readonly double _dropKpa;

    public FlowMeterModel(Random rng) : base(rng)
    {
        _nominalLps = Uniform(25, 90);
        _staticKpa = Uniform(430, 560);
        _dropKpa = Uniform(80, 140);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        double demand = DailyCurves.WaterDemand(local) * (1 + 0.04 * Gauss());
        v[0] = Math.Max(0, _nominalLps * demand);
        v[1] = Math.Max(50, _staticKpa - _dropKpa * demand * demand + 4 * Gauss());
    }
}

internal sealed class PressureLoggerModel : DeviceModel
{
    private readonly double _staticPsi;
    private readonly double _dropPsi;
    private readonly double _levelCm;
    private double _levelDrift;

    public PressureLoggerModel(Random rng) : base(rng)
    {
        _staticPsi = Uniform(55, 82);
        _dropPsi = Uniform(9, 18);
        _levelCm = Uniform(280, 420);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        double demand = DailyCurves.WaterDemand(local);
        _levelDrift = Drift(_levelDrift, 0.05, 1.5);
        v[0] = Math.Max(5, _staticPsi - _dropPsi * demand * demand + 0.6 * Gauss());
        v[1] = Math.Max(10, _levelCm + 70 * (0.6 - demand) + _levelDrift + 0.8 * Gauss());
    }
}

internal sealed class QualityProbeModel : DeviceModel
{
    private readonly double _ph;
    private readonly double _turbidity;
    private readonly double _temperature;
    private readonly double _chlorine;
    private double _phDrift;

    public QualityProbeModel(Random rng) : base(rng)
    {
        _ph = Uniform(7.1, 7.6);
        _turbidity = Uniform(0.15, 0.6);
        _temperature = Uniform(9, 15);
        _chlorine = Uniform(0.35, 0.7);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        double demand = DailyCurves.WaterDemand(local);
        _phDrift = Drift(_phDrift, 0.05, 0.02);
        double turbidity = _turbidity * (1 + 0.6 * demand) * (1 + 0.1 * Gauss());
        if (Rng.NextDouble() < 0.02) turbidity += Uniform(1, 4); // sediment stirred up
        v[0] = Math.Clamp(_ph + _phDrift + 0.04 * Gauss(), 6.0, 9.0);
        v[1] = Math.Max(0.02, turbidity);
        v[2] = _temperature + 0.8 * DailyCurves.Temperature(local) + 0.1 * Gauss();
        v[3] = Math.Max(0.05, _chlorine - 0.15 * demand + 0.02 * Gauss());
    }
}

/// <summary>Air quality: PM and NO2 follow the traffic rush hours, ozone follows sunlight and is
/// consumed by NO2, temperature and humidity follow the day.</summary>
internal sealed class AirQualityModel : DeviceModel
{
    // ug/m3 per ppb at 25 °C and 1 atm: molar mass / 24.45 L/mol.
    private const double No2PerPpb = 46.0055 / 24.45;
    private const double O3PerPpb = 47.9982 / 24.45;

    private readonly bool _us;
    private readonly double _meanTemp;
    private readonly double _tempAmplitude;
    private readonly double _exposure;      // how close the station is to busy roads
    private readonly double _pmBackground;
    private readonly double _pm10Ratio;
    private double _weather;
    private double _pmDrift;

    public AirQualityModel(Random rng, bool us) : base(rng)
    {
        _us = us;
        _meanTemp = Uniform(8, 20);
        _tempAmplitude = Uniform(4, 7);
        _exposure = Uniform(0.5, 1.5);
        _pmBackground = Uniform(5, 12);
        _pm10Ratio = Uniform(1.4, 1.9);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        _weather = Drift(_weather, 0.02, 0.3);
        _pmDrift = Drift(_pmDrift, 0.1, 0.8);
        double shape = DailyCurves.Temperature(local);
        double traffic = DailyCurves.Traffic(local);
        double temp = _meanTemp + _tempAmplitude * shape + _weather + 0.15 * Gauss();
        double rh = Math.Clamp(0.62 - 0.2 * shape - 0.02 * _weather + 0.02 * Gauss(), 0.12, 0.99);
        double pm25 = Math.Max(0.5, _pmBackground + 18 * _exposure * traffic + _pmDrift + 0.8 * Gauss());
        double pm10 = pm25 * _pm10Ratio + Math.Abs(Gauss());
        double no2 = Math.Max(1, 12 + 55 * _exposure * traffic + 3 * Gauss());
        double o3 = Math.Max(2, 25 + 60 * DailyCurves.Sun(local) - 0.35 * no2 + 3 * Gauss());
        if (!_us)
        {
            v[0] = pm25;
            v[1] = pm10;
            v[2] = no2;
            v[3] = o3;
            v[4] = temp;
            v[5] = rh;
        }
        else
        {
            double co = Math.Max(0.05, 0.15 + 0.9 * _exposure * traffic + 0.03 * Gauss());
            v[0] = pm25;
            v[1] = no2 / No2PerPpb;
            v[2] = o3 / O3PerPpb;
            v[3] = co;
            v[4] = temp * 9 / 5 + 32;
            v[5] = rh * 100;
        }
    }
}

internal sealed class NoiseMeterModel : DeviceModel
{
    private readonly double _base;
    private readonly double _swing;

    public NoiseMeterModel(Random rng) : base(rng)
    {
        _base = Uniform(40, 50);
        _swing = Uniform(14, 22);
    }

    public override void Sample(DateTime local, Span<double> v)
    {
        double laeq = _base + _swing * DailyCurves.Activity(local) + 1.5 * Gauss();
        double peak = 6 + Math.Abs(Gauss()) * 6;
        if (Rng.NextDouble() < 0.05) peak += Uniform(8, 20); // horn, siren, motorbike
        v[0] = Math.Clamp(laeq, 20, 120);
        v[1] = Math.Clamp(laeq + peak, 20, 140);
    }
}
