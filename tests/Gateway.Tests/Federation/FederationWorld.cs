using System.Text.Json;
using CityGateway.Exchange;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CityGateway.Tests.Federation;

/// <summary>
/// Our gateway (real broker and InfluxDB), pulling from a fake partner city that is a real HTTP
/// server with one scripted persona per hostile case, plus a second listener on another origin
/// that records whatever reaches it. Started once per test class; each persona is its own partner
/// (own id, key, cursor, trusted keys), so the cases run side by side without touching each other.
/// </summary>
public sealed class FederationWorld : IAsyncLifetime
{
    public const string OurCity = "ourcity";
    private readonly SemaphoreSlim _start = new(1, 1);
    private int _published;

    public FakePartnerCity Partner { get; private set; } = null!;
    public RecordingListener Foreign { get; private set; } = null!;
    public GatewayRunner Gateway { get; private set; } = null!;
    public TempDir Dir { get; } = new("federation");
    public string Database { get; } = ServicesFixture.NewDatabase("fed");
    public string DataPath => Dir.File("exchange");
    public ServicesFixture Services { get; private set; } = null!;
    public FederationState State => Gateway.Services.GetRequiredService<FederationState>();

    public static string ApiKeyOf(string partner) => $"ourkey-at-{partner}-0123456789abcdef";

    /// <summary>Starts the listeners, lets <paramref name="script"/> add personas, then starts the gateway with one partner per persona.</summary>
    public async Task<FederationWorld> StartAsync(ServicesFixture services, Action<FederationWorld> script, params string[] extraArgs)
    {
        await _start.WaitAsync();
        try
        {
            if (Gateway is not null) return this;
            Services = services;
            Partner = await FakePartnerCity.StartAsync();
            Foreign = await RecordingListener.StartForeignAsync();
            script(this);
            var registry = Registries.Write(Registries.Environment("env-0001"), Dir.File("devices.json"));
            var args = new List<string>
            {
                "--Gateway:Exchange:CityId=" + OurCity,
                "--Gateway:Exchange:DataPath=" + DataPath,
            };
            int i = 0;
            foreach (var p in Partner.Personas.Values.OrderBy(p => p.Id))
            {
                args.Add($"--Gateway:Exchange:Partners:{i}:Id={p.Id}");
                args.Add($"--Gateway:Exchange:Partners:{i}:WellKnownUrl={p.WellKnownUrl}");
                args.Add($"--Gateway:Exchange:Partners:{i}:ApiKey={ApiKeyOf(p.Id)}");
                args.Add($"--Gateway:Exchange:Partners:{i}:PollSeconds=1");
                i++;
            }
            args.AddRange(extraArgs);
            Gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, Database, registry, args.ToArray());
            return this;
        }
        finally
        {
            _start.Release();
        }
    }

    public string FolderOf(string partner) => Path.Combine(DataPath, "federation", partner);

    /// <summary>The last accepted sequence as written in the partner's state file (0 when none).</summary>
    public long PersistedSequence(string partner)
    {
        var file = Path.Combine(FolderOf(partner), "state.json");
        if (!File.Exists(file)) return 0;
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        return doc.RootElement.GetProperty("lastSequence").GetInt64();
    }

    public Task WaitRefusedAsync(string partner, string reason, int times = 1, int seconds = 20) =>
        Wait.UntilAsync(() => State.RefusedCount(partner, reason) >= times, TimeSpan.FromSeconds(seconds),
            () => $"{partner}: refused '{reason}' {State.RefusedCount(partner, reason)} times, expected {times}; state: {State.Of(partner)}");

    public Task WaitSequenceAsync(string partner, long sequence, int seconds = 20) =>
        Wait.UntilAsync(() => PersistedSequence(partner) >= sequence, TimeSpan.FromSeconds(seconds),
            () => $"{partner}: last accepted sequence {PersistedSequence(partner)}, expected {sequence}; state: {State.Of(partner)}");

    /// <summary>
    /// The host runs and ingests: a fresh MQTT reading is stored in InfluxDB, /readyz on the
    /// operator listener says ready, and no request carrying any of our keys reached the foreign origin.
    /// </summary>
    public async Task AssertGatewayAliveAsync()
    {
        int n = Interlocked.Increment(ref _published);
        using (var pub = await Publisher.ConnectAsync(Services.Broker.Url))
        {
            long ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            pub.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{ms}},"seq":{{n}},"pm25":7.5}""");
            await pub.FlushAsync();
        }
        await Wait.UntilAsync(async () => await Services.Influx.CountAsync(Database, "environment", "seq", $"\"seq\" = {n}") == 1,
            TimeSpan.FromSeconds(20), () => $"reading {n} published during the attacks was not stored");
        var (status, body) = await Gateway.GetJsonAsync("/readyz");
        Assert.Equal(200, status);
        Assert.True(body.GetProperty("ready").GetBoolean(), body.ToString());
        foreach (var p in Partner.Personas.Keys) Assert.Empty(Foreign.WithKey(ApiKeyOf(p)));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (Gateway is not null) await Gateway.DisposeAsync();
        if (Partner is not null)
        {
            foreach (var p in Partner.Personas.Values) p.Signer.Dispose();
            await Partner.DisposeAsync();
        }
        if (Foreign is not null) await Foreign.DisposeAsync();
        Dir.Dispose();
    }
}
