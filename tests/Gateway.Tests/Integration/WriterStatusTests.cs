using System.Text.Json;
using CityGateway.Normalisation;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>How the writer handles InfluxDB's answers, against real InfluxDB servers that give them.</summary>
[Collection(ServicesCollection.Name)]
public sealed class WriterStatusTests(ServicesFixture services)
{
    private static string RegistryWithNote(string path)
    {
        var file = Registries.Environment("env-0001");
        file.DeviceTypes["aq-us"].Fields["note"] = new FieldMapping { Metric = "note", Custom = true, Type = "string" };
        return Registries.Write(file, path);
    }

    private static string Message(long ts, int seq, string? note = null) =>
        note is null
            ? $$"""{"device":"env-0001","ts":{{ts}},"seq":{{seq}},"pm25":{{seq % 50}}.5}"""
            : $$"""{"device":"env-0001","ts":{{ts}},"seq":{{seq}},"pm25":{{seq % 50}}.5,"note":"{{note}}"}""";

    [Fact]
    public async Task Points_InfluxDB_refuses_are_isolated_and_quarantined_with_its_message_and_the_rest_is_stored()
    {
        using var dir = new TempDir("conflict");
        var registry = RegistryWithNote(dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("conflict");
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 10_000;
        // "note" already exists as a float in this shard: string notes now conflict (HTTP 400, partial write).
        using (var client = services.Influx.Client(db))
        {
            await client.EnsureDatabaseAsync(default);
            var seed = System.Text.Encoding.UTF8.GetBytes($"environment,device=seed note=1.5 {ts * 1_000_000}\n");
            Assert.Equal(WriteOutcome.Accepted, (await client.WriteAsync(seed, default)).Outcome);
        }
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, registry,
            "--Gateway:Influx:FlushIntervalMs=1000");
        using var pub = await Publisher.ConnectAsync(services.Broker.Url);
        var conflicting = new[] { 7, 23, 41 };
        for (int i = 1; i <= 50; i++) pub.Publish("city/json/environment/env-0001", Message(ts + i, i, conflicting.Contains(i) ? "text" : null));
        await pub.FlushAsync();

        await Wait.UntilAsync(() => gateway.Quarantine.Total >= 3, TimeSpan.FromSeconds(30), () => $"quarantined {gateway.Quarantine.Total}");
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == 47, TimeSpan.FromSeconds(30),
            () => "the other points were not stored");
        var entries = gateway.Quarantine.ReadAll().ToList();
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal("rejected_by_influx", e.Reason);
            Assert.Contains("HTTP 400", e.Detail);
            Assert.Contains("field type conflict", e.Detail);
            Assert.Contains("note=\"text\"", e.Payload);
        });
        var seqs = (await services.Influx.RowsAsync(db, "SELECT seq FROM environment WHERE \"device\" = 'env-0001'")).Select(r => r["seq"].GetInt32());
        Assert.Equal(Enumerable.Range(1, 50).Except(conflicting), seqs);
    }

    [Fact]
    public async Task Batches_over_InfluxDBs_body_limit_are_split_and_a_single_point_over_it_is_quarantined()
    {
        using var influx = new InfluxServer("  max-body-size = 1000");
        using var dir = new TempDir("413");
        var registry = RegistryWithNote(dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("toolarge");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, influx.Url, db, registry,
            "--Gateway:Influx:Gzip=false", "--Gateway:Influx:FlushIntervalMs=500");
        using var pub = await Publisher.ConnectAsync(services.Broker.Url);
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 10_000;
        for (int i = 1; i <= 200; i++) pub.Publish("city/json/environment/env-0001", Message(ts + i, i, i == 100 ? new string('n', 1000) : null));
        await pub.FlushAsync();
        await Wait.UntilAsync(async () => await influx.CountAsync(db, "environment", "seq") == 199, TimeSpan.FromSeconds(60),
            () => $"stored {influx.CountAsync(db, "environment", "seq").Result} of 199");
        var entry = Assert.Single(gateway.Quarantine.ReadAll());
        Assert.Equal("rejected_by_influx", entry.Reason);
        Assert.Contains("HTTP 413", entry.Detail);
        Assert.True(gateway.Metrics.Batches > 2, "the batch was split into several writes");
    }

    [Fact]
    public async Task Refused_credentials_stop_writing_and_keep_the_journal_until_a_restart_with_the_right_ones()
    {
        using var influx = new InfluxServer("  auth-enabled = true");
        using (var http = new HttpClient())
        {
            var create = await http.PostAsync(influx.Url + "/query",
                new FormUrlEncodedContent([new("q", "CREATE USER admin WITH PASSWORD 'right-password' WITH ALL PRIVILEGES")]));
            Assert.True(create.IsSuccessStatusCode);
        }
        using var dir = new TempDir("401");
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var journal = dir.File("journal");
        var db = ServicesFixture.NewDatabase("auth");
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 10_000;

        await using (var wrong = await GatewayRunner.StartAsync(services.Broker.Url, influx.Url, db, registry, waitReady: false,
                         "--Gateway:Influx:Username=admin", "--Gateway:Influx:Password=wrong-password", "--Gateway:Journal:Path=" + journal,
                         "--Gateway:Mqtt:ClientId=auth-test-gateway"))
        {
            await Wait.UntilAsync(() => wrong.Health.BrokerConnected, TimeSpan.FromSeconds(30), () => "not connected to the broker");
            using (var pub = await Publisher.ConnectAsync(services.Broker.Url))
            {
                for (int i = 1; i <= 20; i++) pub.Publish("city/json/environment/env-0001", Message(ts + i, i));
                await pub.FlushAsync();
            }
            await Wait.UntilAsync(() => wrong.Health.InfluxUnauthorised, TimeSpan.FromSeconds(30), () => $"influx: {wrong.Health.InfluxDetail}");
            var (status, body) = await wrong.GetJsonAsync("/readyz");
            Assert.Equal(503, status);
            Assert.True(body.GetProperty("influx").GetProperty("unauthorised").GetBoolean());
            Assert.Contains("401", body.GetProperty("influx").GetProperty("detail").GetString());
            Assert.DoesNotContain("wrong-password", body.ToString());
            Assert.Equal(20, body.GetProperty("journal").GetProperty("pending").GetInt64());
        }

        await using var right = await GatewayRunner.StartAsync(services.Broker.Url, influx.Url, db, registry,
            "--Gateway:Influx:Username=admin", "--Gateway:Influx:Password=right-password", "--Gateway:Journal:Path=" + journal,
            "--Gateway:Mqtt:ClientId=auth-test-gateway");
        using var query = new HttpClient();
        await Wait.UntilAsync(async () =>
        {
            var r = await query.GetAsync($"{influx.Url}/query?u=admin&p=right-password&db={db}&q=" + Uri.EscapeDataString("SELECT count(seq) FROM environment"));
            var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("results")[0].TryGetProperty("series", out var s) && s[0].GetProperty("values")[0][1].GetInt64() == 20;
        }, TimeSpan.FromSeconds(30), () => "the journal was not written after the restart with the right credentials");
    }
}
