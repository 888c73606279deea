using System.Text.Json;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// Two cities on one machine, each with its own broker, InfluxDB database, device fleet, signing
/// key and gateway, with agreements both ways. Data spans the last two hours, so several 15-minute
/// windows are due for release as soon as it is stored.
/// </summary>
public sealed class TwoCities : IAsyncDisposable
{
    public const int WindowMinutes = 15;

    public sealed class City
    {
        public required string Id { get; init; }
        public required MosquittoBroker Broker { get; init; }
        public required TempDir Dir { get; init; }
        public required string Database { get; init; }
        public required int HttpPort { get; init; }
        public required ReleaseSigner Signer { get; init; }
        public required SimulatorOptions Fleet { get; init; }
        public GatewayRunner Gateway { get; set; } = null!;
        /// <summary>The command line the gateway was started with (a restart uses it again).</summary>
        public string[] Args { get; set; } = [];
        /// <summary>The key this city issued to its partner (the partner uses it to read this city's feed).</summary>
        public string KeyForPartner { get; set; } = "";
        public string Url => $"http://127.0.0.1:{HttpPort}";
        public string DataPath => Dir.File("exchange");
        public ExchangeContext Exchange => Gateway.Services.GetRequiredService<ExchangeContext>();
        public ReleaseJob ReleaseJob => Gateway.Services.GetServices<IHostedService>().OfType<ReleaseJob>().Single();
        public FederationClient Federation => Gateway.Services.GetRequiredService<FederationClient>();
    }

    public required City A { get; init; }
    public required City B { get; init; }
    public required InfluxServer Influx { get; init; }

    /// <summary>The agreement a city makes with its partner: air quality exactly (k = 3), traffic and water with noise.</summary>
    public static string AgreementJson(string partnerId, string partnerName, double epsilonPerMonth = 1000) => $$"""
        {
          "partner": { "id": "{{partnerId}}", "name": "{{partnerName}}" },
          "validFrom": "2026-01-01T00:00:00Z",
          "validUntil": "2030-01-01T00:00:00Z",
          "window": "00:{{WindowMinutes}}:00",
          "allowedLateness": "00:01:00",
          "districts": ["*"],
          "epsilonPerMonth": {{epsilonPerMonth.ToString(System.Globalization.CultureInfo.InvariantCulture)}},
          "metrics": [
            { "domain": "environment", "metric": "pm25", "aggregate": "mean", "minDevices": 3 },
            { "domain": "environment", "metric": "temperature", "aggregate": "mean", "minDevices": 3 },
            { "domain": "traffic", "metric": "intensity", "aggregate": "sum", "minDevices": 3,
              "clamp": [0, 2000], "granularity": 1, "epsilon": 0.5, "minVolume": 5 },
            { "domain": "water", "metric": "flow", "aggregate": "mean", "minDevices": 3,
              "clamp": [0, 500], "granularity": 0.1, "epsilon": 0.5, "minVolume": 1 }
          ]
        }
        """;

    public static Task<TwoCities> StartAsync(InfluxServer influx, params string[] extraArgsForA) => StartAsync(influx, 1000, extraArgsForA);

    public static Task<TwoCities> StartAsync(InfluxServer influx, double epsilonPerMonth, params string[] extraArgsForA) =>
        StartAsync(influx, epsilonPerMonth, 0, extraArgsForA);

    /// <summary>
    /// <paramref name="extraPartnersOfA"/> more agreements in A's folder (partners "p01", "p02", …,
    /// the same terms as B's, each with a key in <see cref="ExtraKeysOfA"/>): they read A's feed but
    /// run no gateway.
    /// </summary>
    public static async Task<TwoCities> StartAsync(InfluxServer influx, double epsilonPerMonth, int extraPartnersOfA, params string[] extraArgsForA)
    {
        City Make(string id, int seed) => new()
        {
            Id = id,
            Broker = new MosquittoBroker(),
            Dir = new TempDir("city-" + id),
            Database = ServicesFixture.NewDatabase(id),
            HttpPort = ServiceProcess.FreePort(),
            Signer = ReleaseSigner.Generate(),
            Fleet = new SimulatorOptions { City = id, TrafficDevices = 24, WaterDevices = 24, EnvironmentDevices = 24, Seed = seed, Qos = 1, MessagesPerDevice = 20 },
        };
        var a = Make("citya", 101);
        var b = Make("cityb", 202);
        foreach (var (city, partner) in new[] { (a, b), (b, a) })
        {
            Directory.CreateDirectory(city.Dir.File("agreements"));
            File.WriteAllText(city.Dir.File("agreements/" + partner.Id + ".json"), AgreementJson(partner.Id, partner.Id.ToUpperInvariant(), epsilonPerMonth));
            File.WriteAllText(city.Dir.File("city-key.pem"), city.Signer.ExportPkcs8PrivateKeyPem());
            city.Fleet.BrokerUrl = city.Broker.Url;
            city.Fleet.RegistryPath = city.Dir.File("devices.json");
            FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(city.Fleet), city.Fleet.RegistryPath);
            // The partner's key at this city's gateway, issued before either starts.
            city.KeyForPartner = new PartnerKeyStore(Path.Combine(city.DataPath, "partner-keys.json")).Issue(partner.Id).Key;
        }
        var extraKeys = new Dictionary<string, string>();
        for (int i = 1; i <= extraPartnersOfA; i++)
        {
            var id = $"p{i:D2}";
            File.WriteAllText(a.Dir.File("agreements/" + id + ".json"), AgreementJson(id, id.ToUpperInvariant(), epsilonPerMonth));
            extraKeys[id] = new PartnerKeyStore(Path.Combine(a.DataPath, "partner-keys.json")).Issue(id).Key;
        }
        foreach (var (city, partner) in new[] { (a, b), (b, a) })
        {
            string[] args =
            [
                "--urls", city.Url,
                "--Gateway:Exchange:Enabled=true",
                "--Gateway:Exchange:PublicBaseUrl=" + city.Url,
                "--Gateway:Exchange:CityId=" + city.Id,
                "--Gateway:Exchange:CityName=" + city.Id.ToUpperInvariant(),
                "--Gateway:Exchange:AgreementsPath=" + city.Dir.File("agreements"),
                "--Gateway:Exchange:DataPath=" + city.DataPath,
                "--Gateway:Exchange:Signing:KeyFile=" + city.Dir.File("city-key.pem"),
                "--Gateway:Exchange:ReleaseCheckSeconds=3600",
                "--Gateway:Exchange:Backfill=03:00:00",
                "--Gateway:Exchange:Partners:0:Id=" + partner.Id,
                "--Gateway:Exchange:Partners:0:WellKnownUrl=" + partner.Url + "/.well-known/city-exchange",
                "--Gateway:Exchange:Partners:0:ApiKey=" + partner.KeyForPartner,
                "--Gateway:Exchange:Partners:0:PollSeconds=1",
                "--Gateway:Normalisation:MaxAge=1.00:00:00",
                .. city == a ? extraArgsForA : [],
            ];
            city.Args = args;
            city.Gateway = await GatewayRunner.StartAsync(city.Broker.Url, influx.Url, city.Database, city.Fleet.RegistryPath!, args);
        }
        return new TwoCities { A = a, B = b, Influx = influx, ExtraKeysOfA = extraKeys };
    }

    /// <summary>Keys of A's extra partners (see <see cref="StartAsync(InfluxServer, double, int, string[])"/>), by partner id.</summary>
    public IReadOnlyDictionary<string, string> ExtraKeysOfA { get; init; } = new Dictionary<string, string>();

    /// <summary>Stops a city's gateway and starts a new one on the same data folders and command line.</summary>
    public async Task RestartAsync(City city, Action? whileStopped = null)
    {
        await city.Gateway.DisposeAsync();
        whileStopped?.Invoke();
        city.Gateway = await GatewayRunner.StartAsync(city.Broker.Url, Influx.Url, city.Database, city.Fleet.RegistryPath!, city.Args);
    }

    /// <summary>Publishes each city's fleet with device times spread over the last two hours and waits until stored.</summary>
    public async Task FeedAsync()
    {
        // 72 devices × 20 messages, one every 5 s of simulated time: each device reports every 6 minutes.
        foreach (var city in new[] { A, B })
            await FleetFeed.PublishAndWaitAsync(Influx, city.Broker.Url, city.Database, city.Fleet, city.Id + ": ");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var city in new[] { A, B })
        {
            if (city.Gateway is not null) await city.Gateway.DisposeAsync();
            city.Broker.Dispose();
            city.Signer.Dispose();
            city.Dir.Dispose();
        }
    }
}
