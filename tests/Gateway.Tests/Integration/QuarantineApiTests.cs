using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CityGateway.Normalisation;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CityGateway.Tests.Integration;

/// <summary>Listing and replaying the quarantine through the operator API, end to end.</summary>
[Collection(ServicesCollection.Name)]
public sealed class QuarantineApiTests(ServicesFixture services)
{
    private const string Key = "operator-key-for-this-test";

    [Fact]
    public async Task Quarantine_is_listed_and_replayed_after_the_registry_is_fixed_and_refuses_requests_without_the_key()
    {
        using var dir = new TempDir("qapi");
        var registryPath = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("qapi");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, registryPath,
            "--Gateway:Operations:ApiKey=" + Key);
        using var http = new HttpClient { BaseAddress = new Uri(gateway.OperatorUrl) };

        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 5_000;
        using (var pub = await Publisher.ConnectAsync(services.Broker.Url))
        {
            for (int i = 1; i <= 3; i++)
                pub.Publish("city/json/environment/env-0009", $$"""{"device":"env-0009","ts":{{ts + i}},"seq":{{i}},"pm25":{{i}}.5}""");
            pub.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{ts}},"blob":"{{new string('z', 300_000)}}"}""");
            await pub.FlushAsync();
        }
        await Wait.UntilAsync(() => gateway.Quarantine.Total >= 4, TimeSpan.FromSeconds(30), () => $"quarantined {gateway.Quarantine.Total}");

        // No key, wrong key: refused with a problem document.
        foreach (var request in new[]
                 {
                     new HttpRequestMessage(HttpMethod.Get, "/api/quarantine"),
                     new HttpRequestMessage(HttpMethod.Get, "/api/quarantine") { Headers = { { "X-Api-Key", "wrong" } } },
                     new HttpRequestMessage(HttpMethod.Post, "/api/quarantine/replay") { Content = JsonContent.Create(new { reason = "unknown_device" }) },
                 })
        {
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        http.DefaultRequestHeaders.Authorization = new("Bearer", Key);
        var all = await http.GetFromJsonAsync<JsonElement>("/api/quarantine");
        Assert.Equal(4, all.GetProperty("total").GetInt32());
        var unknown = await http.GetFromJsonAsync<JsonElement>("/api/quarantine?reason=unknown_device");
        var entries = unknown.GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal("env-0009", e.GetProperty("device").GetString());
            Assert.True(e.GetProperty("replayable").GetBoolean());
            Assert.False(e.GetProperty("replayed").GetBoolean());
        });
        var tooLarge = Assert.Single((await http.GetFromJsonAsync<JsonElement>("/api/quarantine?reason=payload_too_large")).GetProperty("entries").EnumerateArray());
        Assert.False(tooLarge.GetProperty("replayable").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/quarantine?since=yesterday")).StatusCode);

        // Fix the registry; the gateway reloads it without a restart.
        var fixedRegistry = Registries.Environment("env-0001", "env-0009");
        Registries.Write(fixedRegistry, registryPath);
        var holder = gateway.Services.GetRequiredService<RegistryHolder>();
        await Wait.UntilAsync(() => holder.Current.TryGet("env-0009", out _), TimeSpan.FromSeconds(15), () => "registry not reloaded");

        var replay = await (await http.PostAsJsonAsync("/api/quarantine/replay", new { reason = "unknown_device" })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(3, replay.GetProperty("replayed").GetInt32());
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq", "\"device\" = 'env-0009'") == 3,
            TimeSpan.FromSeconds(30), () => "replayed frames were not stored");
        // Stored with the device's own timestamps, as if they had never been quarantined.
        var rows = await services.Influx.RowsAsync(db, "SELECT seq FROM environment WHERE \"device\" = 'env-0009'");
        Assert.Equal(new[] { ts + 1, ts + 2, ts + 3 }.Select(ms => ms * 1_000_000), rows.Select(r => r["time"].GetInt64()));

        // A second replay of the same entries is refused unless forced; the truncated payload is never replayable.
        var again = await (await http.PostAsJsonAsync("/api/quarantine/replay",
            new { ids = entries.Select(e => e.GetProperty("id").GetString()).Append(tooLarge.GetProperty("id").GetString()).ToArray() }))
            .Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(0, again.GetProperty("replayed").GetInt32());
        Assert.Equal(4, again.GetProperty("skipped").GetArrayLength());
        var listed = await http.GetFromJsonAsync<JsonElement>("/api/quarantine?reason=unknown_device");
        Assert.All(listed.GetProperty("entries").EnumerateArray(), e => Assert.True(e.GetProperty("replayed").GetBoolean()));
    }

    [Fact]
    public async Task Operator_api_is_disabled_without_a_configured_key()
    {
        using var dir = new TempDir("qapi-off");
        var registryPath = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, ServicesFixture.NewDatabase("qoff"), registryPath);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", "anything");
        var response = await http.GetAsync(gateway.OperatorUrl + "/api/quarantine");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }
}
