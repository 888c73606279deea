using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// One publishing city with its own broker, database, fleet and exchange data folder, and
/// agreements with several partners; its gateway can be stopped and started again over the same
/// data folder (for a key rotation).
/// </summary>
public sealed class OneCity : IAsyncDisposable
{
    public const string OperatorKey = "operator-key-for-tests";
    public const string PublicBaseUrl = "https://exchange.citya.example";

    private readonly InfluxServer _influx;

    private OneCity(InfluxServer influx) => _influx = influx;

    public MosquittoBroker Broker { get; } = new();
    public TempDir Dir { get; } = new("one-city");
    public string Database { get; } = ServicesFixture.NewDatabase("onecity");
    public int HttpPort { get; } = ServiceProcess.FreePort();
    public SimulatorOptions Fleet { get; private set; } = null!;
    public GatewayRunner? Gateway { get; private set; }
    /// <summary>Partner id → the key this city issued to it.</summary>
    public Dictionary<string, string> Keys { get; } = [];
    public string Url => $"http://127.0.0.1:{HttpPort}";
    public string DataPath => Dir.File("exchange");
    public string KeyFile(string name) => Dir.File(name + ".pem");
    public ReleaseJob ReleaseJob => Gateway!.Services.GetServices<IHostedService>().OfType<ReleaseJob>().Single();

    /// <summary>The agreement with a partner, valid from <paramref name="from"/> until <paramref name="until"/>.</summary>
    public static string Agreement(string partner, string from, string until) =>
        TwoCities.AgreementJson(partner, partner.ToUpperInvariant())
            .Replace("2026-01-01T00:00:00Z", from, StringComparison.Ordinal)
            .Replace("2030-01-01T00:00:00Z", until, StringComparison.Ordinal);

    /// <param name="agreements">Partner id, validFrom, validUntil.</param>
    public static OneCity Create(InfluxServer influx, params (string Partner, string From, string Until)[] agreements)
    {
        var city = new OneCity(influx);
        Directory.CreateDirectory(city.Dir.File("agreements"));
        foreach (var (partner, from, until) in agreements)
        {
            File.WriteAllText(city.Dir.File($"agreements/{partner}.json"), Agreement(partner, from, until));
            city.Keys[partner] = new PartnerKeyStore(Path.Combine(city.DataPath, "partner-keys.json")).Issue(partner).Key;
        }
        city.Fleet = new SimulatorOptions
        {
            City = "citya", TrafficDevices = 12, WaterDevices = 12, EnvironmentDevices = 12, Seed = 11, Qos = 1, MessagesPerDevice = 20,
            BrokerUrl = city.Broker.Url, RegistryPath = city.Dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(city.Fleet), city.Fleet.RegistryPath);
        return city;
    }

    /// <summary>A new signing key in a file of this city's folder, written by the keygen command.</summary>
    public string NewKey(string name)
    {
        var path = KeyFile(name);
        Assert.Equal(0, ExchangeCommands.Run(["keygen", "--out", path], TextWriter.Null, TextWriter.Null));
        return path;
    }

    /// <summary>The exchange settings of this city's gateway, signing with <paramref name="keyFile"/>.</summary>
    public string[] ExchangeArgs(string keyFile) =>
    [
        "--urls", Url,
        "--Gateway:Operations:ApiKey=" + OperatorKey,
        "--Gateway:Exchange:Enabled=true",
        "--Gateway:Exchange:PublicBaseUrl=" + PublicBaseUrl,
        "--Gateway:Exchange:CityId=citya",
        "--Gateway:Exchange:CityName=CITYA",
        "--Gateway:Exchange:AgreementsPath=" + Dir.File("agreements"),
        "--Gateway:Exchange:DataPath=" + DataPath,
        "--Gateway:Exchange:Signing:KeyFile=" + keyFile,
        "--Gateway:Exchange:ReleaseCheckSeconds=3600",
        "--Gateway:Exchange:Backfill=03:00:00",
        "--Gateway:Normalisation:MaxAge=1.00:00:00",
    ];

    public async Task StartAsync(string keyFile, params string[] extra)
    {
        Gateway = await GatewayRunner.StartAsync(Broker.Url, _influx.Url, Database, Fleet.RegistryPath!, [.. ExchangeArgs(keyFile), .. extra]);
    }

    public async Task StopAsync()
    {
        if (Gateway is not null) await Gateway.DisposeAsync();
        Gateway = null;
    }

    /// <summary>Publishes the fleet with device times over the last two hours and waits until stored.</summary>
    public Task FeedAsync() => FleetFeed.PublishAndWaitAsync(_influx, Broker.Url, Database, Fleet);

    /// <summary>
    /// An HTTP client whose connections come from <paramref name="localAddress"/> (any 127.x.y.z is
    /// this machine's loopback), so tests can be several client addresses.
    /// </summary>
    public static HttpClient ClientFrom(string localAddress, string? key = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(IPAddress.Parse(localAddress), 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var http = new HttpClient(handler);
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Broker.Dispose();
        Dir.Dispose();
    }
}
