using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace CityGateway.Simulators;

/// <summary>Where a simulated city lies: its centre and its districts' offsets from the centre (degrees).</summary>
public sealed class CityMap
{
    /// <summary>The default city's districts; their offsets are fixed so that runs of the default city
    /// keep the positions they always had.</summary>
    private static readonly (string Name, double DLat, double DLon)[] DefaultDistricts =
    [
        ("centre", 0.000, 0.000),
        ("harbour", -0.016, -0.024),
        ("riverside", 0.011, -0.017),
        ("old-town", 0.006, 0.012),
        ("north-hills", 0.031, 0.009),
        ("airport", -0.034, 0.047),
    ];

    /// <summary>The default city: centre 45.7640, 4.8357 with six districts.</summary>
    public static CityMap Default { get; } = new(Fleet.CentreLatitude, Fleet.CentreLongitude, DefaultDistricts);

    public static IReadOnlyList<string> DefaultDistrictNames { get; } = DefaultDistricts.Select(d => d.Name).ToArray();

    /// <summary>At most this many districts (a district needs devices to be of use).</summary>
    public const int MaxDistricts = 100;

    private readonly (string Name, double DLat, double DLon)[] _districts;

    private CityMap(double latitude, double longitude, (string Name, double DLat, double DLon)[] districts)
    {
        CentreLatitude = latitude;
        CentreLongitude = longitude;
        _districts = districts;
        Districts = districts.Select(d => d.Name).ToArray();
    }

    public double CentreLatitude { get; }

    public double CentreLongitude { get; }

    public IReadOnlyList<string> Districts { get; }

    /// <summary>
    /// The map for <paramref name="districts"/> (null: the default six) around the centre (null: the
    /// default centre). A default district keeps its offset; any other name gets an offset of 0.5 to
    /// 3.5 km from the centre derived from the seed and the name, so the same seed and names give the
    /// same map.
    /// </summary>
    public static CityMap Create(IReadOnlyList<string>? districts, double? latitude, double? longitude, int seed)
    {
        double lat = latitude ?? Fleet.CentreLatitude, lon = longitude ?? Fleet.CentreLongitude;
        if (districts is null) return latitude is null && longitude is null ? Default : new CityMap(lat, lon, DefaultDistricts);
        var list = new (string, double, double)[districts.Count];
        for (int i = 0; i < districts.Count; i++)
        {
            var name = districts[i];
            int known = Array.FindIndex(DefaultDistricts, d => d.Name == name);
            if (known >= 0) list[i] = DefaultDistricts[known];
            else
            {
                var (dLat, dLon) = DerivedOffset(seed, name);
                list[i] = (name, dLat, dLon);
            }
        }
        return new CityMap(lat, lon, list);
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a district name is not lower-case letters,
    /// digits and '-', is repeated, or there are none or too many.</summary>
    public static void ValidateDistricts(IReadOnlyList<string> districts)
    {
        if (districts.Count == 0) throw new ArgumentException("--districts: no district names given");
        if (districts.Count > MaxDistricts) throw new ArgumentException($"--districts: at most {MaxDistricts} districts, not {districts.Count}");
        foreach (var name in districts)
            if (name.Length == 0 || name.Length > 64 || !name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
                throw new ArgumentException($"--districts: '{name}' is not a district name (1 to 64 lower-case letters, digits and '-')");
        var repeated = districts.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"--districts: '{repeated.Key}' is given more than once");
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the centre is a latitude in -90..90 and a longitude in -180..180.</summary>
    public static void ValidateCentre(double latitude, double longitude)
    {
        if (!double.IsFinite(latitude) || latitude is < -90 or > 90)
            throw new ArgumentException($"--centre: the latitude must be from -90 to 90, not {latitude.ToString(CultureInfo.InvariantCulture)}");
        if (!double.IsFinite(longitude) || longitude is < -180 or > 180)
            throw new ArgumentException($"--centre: the longitude must be from -180 to 180, not {longitude.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Draws a district, a site of the type and a position within the district from <paramref name="place"/>.</summary>
    internal (string District, string Site, double Latitude, double Longitude) Place(Random place, DeviceTypeSpec type)
    {
        var (district, dLat, dLon) = _districts[place.Next(_districts.Length)];
        var site = $"{type.SitePrefix}-{place.Next(1, 60)}";
        double lat = Math.Round(CentreLatitude + dLat + (place.NextDouble() - 0.5) * 0.008, 6);
        double lon = Math.Round(CentreLongitude + dLon + (place.NextDouble() - 0.5) * 0.011, 6);
        return (district, site, Math.Clamp(lat, -90, 90), WrapLongitude(lon));
    }

    /// <summary>A gateway's position near the centre, wrapped like the devices' positions.</summary>
    internal (double Latitude, double Longitude) Near(double dLat, double dLon, int decimals) =>
        (Math.Clamp(Math.Round(CentreLatitude + dLat, decimals), -90, 90), Math.Round(WrapLongitude(CentreLongitude + dLon), decimals));

    private static double WrapLongitude(double lon) => lon > 180 ? lon - 360 : lon < -180 ? lon + 360 : lon;

    private static (double DLat, double DLon) DerivedOffset(int seed, string name)
    {
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"district:{seed}:{name}")));
        double u = BitConverter.ToUInt32(h, 0) / (double)uint.MaxValue;
        double v = BitConverter.ToUInt32(h, 4) / (double)uint.MaxValue;
        // 0.0045 to 0.0315 degrees of latitude (0.5 to 3.5 km); a degree of longitude is shorter
        // away from the equator, so its offset is stretched by about 1.4, as in the default city.
        double r = 0.0045 + 0.027 * u, angle = 2 * Math.PI * v;
        return (Math.Round(r * Math.Sin(angle), 3), Math.Round(1.4 * r * Math.Cos(angle), 3));
    }
}
