using System.Net.Http.Json;
using System.Text.Json;
using CityGateway.Health;
using CityGateway.Quarantine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Infrastructure;

/// <summary>The real gateway host, in this process, wired to the test's broker, InfluxDB and registry.</summary>
public sealed class GatewayRunner : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempDir _dir = new("gateway");

    private GatewayRunner(WebApplication app, TempDir dir)
    {
        _app = app;
        _dir = dir;
    }

    public static Task<GatewayRunner> StartAsync(string brokerUrl, string influxUrl, string database, string registryPath,
        params string[] extra) => StartAsync(brokerUrl, influxUrl, database, registryPath, waitReady: true, extra);

    public static async Task<GatewayRunner> StartAsync(string brokerUrl, string influxUrl, string database, string registryPath,
        bool waitReady, params string[] extra)
    {
        var dir = new TempDir("gateway");
        var args = new List<string>
        {
            "--urls", "http://127.0.0.1:0",
            // The operator listener needs a port known before start: requests are told apart by it.
            "--Gateway:Operations:Listen=http://127.0.0.1:" + ServiceProcess.FreePort(),
            "--Gateway:Mqtt:Url=" + brokerUrl,
            "--Gateway:Mqtt:ClientId=gw-" + Guid.NewGuid().ToString("N")[..8],
            "--Gateway:Influx:Url=" + influxUrl,
            "--Gateway:Influx:Database=" + database,
            "--Gateway:Influx:FlushIntervalMs=100",
            "--Gateway:Registry:Path=" + registryPath,
            "--Gateway:Quarantine:Path=" + dir.File("quarantine.jsonl"),
            "--Gateway:Journal:Path=" + dir.File("journal"),
            "--Gateway:SelfMetrics:IntervalSeconds=1",
            "--Logging:LogLevel:Default=Warning",
        };
        args.AddRange(extra);
        var app = GatewayApp.Build(args.ToArray());
        GatewayApp.ValidateConfiguration(app.Services);
        await app.StartAsync();
        var runner = new GatewayRunner(app, dir);
        if (!waitReady) return runner;
        await Wait.UntilAsync(() => runner.Health.BrokerConnected && runner.Health.InfluxReachable, TimeSpan.FromSeconds(30),
            () => $"gateway not ready: broker {runner.Health.BrokerDetail}, influx {runner.Health.InfluxDetail}");
        return runner;
    }

    /// <summary>The partner listener (exchange API, well-known document, bare health).</summary>
    public string BaseUrl => _app.Urls.First(u => new Uri(u).Port != OperatorPort);

    /// <summary>The operator listener (quarantine API, /readyz with details, /metrics).</summary>
    public string OperatorUrl => _app.Urls.First(u => new Uri(u).Port == OperatorPort);

    private int OperatorPort => _app.Services.GetRequiredService<IOptions<OperatorListenerOptions>>().Value.Port!.Value;

    public IServiceProvider Services => _app.Services;

    public HealthView Health => new(_app.Services.GetRequiredService<CityGateway.Sources.Mqtt.BrokerState>(), _app.Services.GetRequiredService<CityGateway.Storage.Influx.InfluxState>());

    public GatewayMetrics Metrics => _app.Services.GetRequiredService<GatewayMetrics>();

    public QuarantineStore Quarantine => _app.Services.GetRequiredService<QuarantineStore>();

    /// <summary>GET on the operator listener, as an operator (or monitoring) asks /readyz.</summary>
    public async Task<(int Status, JsonElement Body)> GetJsonAsync(string path)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(OperatorUrl + path);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return ((int)response.StatusCode, body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _dir.Dispose();
    }
}
