namespace CityGateway.Simulators;

/// <summary>The simulated devices of one run and the LoRaWAN network they appear to use.</summary>
public sealed class Fleet
{
    /// <summary>Approximate centre of the default simulated city (<see cref="CityMap.Default"/>).</summary>
    public const double CentreLatitude = 45.7640;
    public const double CentreLongitude = 4.8357;

    /// <summary>The Things Stack tenant in uplink topics.</summary>
    public const string TtsTenant = "ttn";

    /// <summary>The default city's districts (see <see cref="CityMap"/>).</summary>
    public static IReadOnlyList<string> Districts => CityMap.DefaultDistrictNames;

    private static readonly string[] Prefixes = ["trf", "wat", "env"];

    private Fleet(string city, CityMap map, IReadOnlyList<SimulatedDevice> devices)
    {
        City = city;
        Map = map;
        Devices = devices;
    }

    public string City { get; }

    /// <summary>The city's centre and districts the devices are placed in.</summary>
    public CityMap Map { get; }

    /// <summary>Devices in publishing order: trf-0001, wat-0001, env-0001, trf-0002, ...</summary>
    public IReadOnlyList<SimulatedDevice> Devices { get; }

    /// <summary>Application id of The Things Stack uplinks and name of the ChirpStack application.</summary>
    public string ApplicationName => ApplicationNameFor(City);

    public Guid ChirpStackApplicationId => Identifiers.GuidFor("chirpstack-application:" + City);

    public Guid ChirpStackTenantId => Identifiers.GuidFor("chirpstack-tenant:" + City);

    public string JoinEui => Identifiers.JoinEuiFor(City);

    public static string ApplicationNameFor(string city) => city.ToLowerInvariant() + "-sensors";

    /// <summary>Builds the devices for <paramref name="o"/>. Everything but the topics' application ids
    /// depends only on the seed, the device counts and the city's map (districts and centre).</summary>
    public static Fleet Create(SimulatorOptions o)
    {
        o.Validate();
        var formats = o.NormalisedFormats();
        var map = o.Map();
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
                var (district, site, lat, lon) = map.Place(place, type);
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
        return new Fleet(o.City, map, ordered);
    }

    /// <summary>Draws a district, a site of the type and a position in the default city from <paramref name="place"/>.</summary>
    internal static (string District, string Site, double Latitude, double Longitude) Place(Random place, DeviceTypeSpec type) =>
        CityMap.Default.Place(place, type);
}
