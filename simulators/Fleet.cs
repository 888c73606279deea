namespace CityGateway.Simulators;

/// <summary>The simulated devices of one run and the LoRaWAN network they appear to use.</summary>
public sealed class Fleet
{
    /// <summary>Approximate centre of the simulated city.</summary>
    public const double CentreLatitude = 45.7640;
    public const double CentreLongitude = 4.8357;

    /// <summary>The Things Stack tenant in uplink topics.</summary>
    public const string TtsTenant = "ttn";

    /// <summary>Districts and their offsets from the city centre (degrees).</summary>
    private static readonly (string Name, double DLat, double DLon)[] DistrictList =
    [
        ("centre", 0.000, 0.000),
        ("harbour", -0.016, -0.024),
        ("riverside", 0.011, -0.017),
        ("old-town", 0.006, 0.012),
        ("north-hills", 0.031, 0.009),
        ("airport", -0.034, 0.047),
    ];

    public static IReadOnlyList<string> Districts { get; } = DistrictList.Select(d => d.Name).ToArray();

    private static readonly string[] Prefixes = ["trf", "wat", "env"];

    private Fleet(string city, IReadOnlyList<SimulatedDevice> devices)
    {
        City = city;
        Devices = devices;
    }

    public string City { get; }

    /// <summary>Devices in publishing order: trf-0001, wat-0001, env-0001, trf-0002, ...</summary>
    public IReadOnlyList<SimulatedDevice> Devices { get; }

    /// <summary>Application id of The Things Stack uplinks and name of the ChirpStack application.</summary>
    public string ApplicationName => ApplicationNameFor(City);

    public Guid ChirpStackApplicationId => Identifiers.GuidFor("chirpstack-application:" + City);

    public Guid ChirpStackTenantId => Identifiers.GuidFor("chirpstack-tenant:" + City);

    public string JoinEui => Identifiers.JoinEuiFor(City);

    public static string ApplicationNameFor(string city) => city.ToLowerInvariant() + "-sensors";

    /// <summary>Builds the devices for <paramref name="o"/>. Everything but the topics' application ids
    /// depends only on the seed and the device counts.</summary>
    public static Fleet Create(SimulatorOptions o)
    {
        o.Validate();
        var formats = o.NormalisedFormats();
        int[] counts = [o.TrafficDevices, o.WaterDevices, o.EnvironmentDevices];
        var perDomain = new List<SimulatedDevice>[3];
        for (int d = 0; d < 3; d++)
        {
            var domain = DeviceTypes.Domains[d];
            var types = DeviceTypes.ForDomain(domain);
            int offset = Identifiers.DeviceSeed(o.Seed, d, 0, 99) % types.Count;
            perDomain[d] = new List<SimulatedDevice>(counts[d]);
            for (int i = 0; i < counts[d]; i++)
            {
                // Rotate the types one step every four devices, so that with four formats each type
                // gets every format in turn.
                var type = types[(i + i / 4 + offset) % types.Count];
                var format = formats[i % formats.Count];
                var id = $"{Prefixes[d]}-{i + 1:D4}";
                var place = new Random(Identifiers.DeviceSeed(o.Seed, d, i, 1));
                var (district, site, lat, lon) = Place(place, type);
                string? lane = domain == "traffic" ? (place.Next(2) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                var model = type.CreateModel(new Random(Identifiers.DeviceSeed(o.Seed, d, i, 2)));
                var radio = new Random(Identifiers.DeviceSeed(o.Seed, d, i, 3));
                var topic = format switch
                {
                    "json" => $"city/json/{domain}/{id}",
                    "senml" => $"city/senml/{domain}/{id}",
                    "chirpstack" => $"application/{Identifiers.GuidFor("chirpstack-application:" + o.City)}/device/{Identifiers.DevEuiFor(id)}/event/up",
                    "tts" => $"v3/{ApplicationNameFor(o.City)}@{TtsTenant}/devices/{id}/up",
                    _ => throw new InvalidOperationException(format),
                };
                perDomain[d].Add(new SimulatedDevice(id, i, type, format, district, site, lat, lon, lane, model, radio, topic));
            }
        }
        var ordered = new List<SimulatedDevice>(counts.Sum());
        for (int i = 0; i < counts.Max(); i++)
            for (int d = 0; d < 3; d++)
                if (i < counts[d]) ordered.Add(perDomain[d][i]);
        return new Fleet(o.City, ordered);
    }

    /// <summary>Draws a district, a site of the type and a position within the district from <paramref name="place"/>.</summary>
    internal static (string District, string Site, double Latitude, double Longitude) Place(Random place, DeviceTypeSpec type)
    {
        var (district, dLat, dLon) = DistrictList[place.Next(DistrictList.Length)];
        var site = $"{type.SitePrefix}-{place.Next(1, 60)}";
        double lat = Math.Round(CentreLatitude + dLat + (place.NextDouble() - 0.5) * 0.008, 6);
        double lon = Math.Round(CentreLongitude + dLon + (place.NextDouble() - 0.5) * 0.011, 6);
        return (district, site, lat, lon);
    }
}
