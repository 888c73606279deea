using System.Text;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>Bad payloads among good ones: every good message is stored, every bad one quarantined with its reason.</summary>
[Collection(ServicesCollection.Name)]
public sealed class BadInputTests(ServicesFixture services)
{
    [Fact]
    public async Task Good_messages_are_stored_and_each_bad_one_is_quarantined_with_its_reason()
    {
        using var dir = new TempDir("badinput");
        var registry = Registries.Write(Registries.Environment("env-0001", "env-0002"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("bad");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, registry);
        using var pub = await Publisher.ConnectAsync(services.Broker.Url);

        long baseMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        int seq = 0;
        string Good(string device) =>
            $$"""{"device":"{{device}}","ts":{{baseMs + ++seq}},"seq":{{seq}},"pm25":{{10 + seq % 7}}.5,"temp_f":68.0}""";

        var bad = new List<(string Case, byte[] Payload, string[] Reasons)>
        {
            ("malformed", Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":"""), ["malformed_payload"]),
            ("utf8", [.. Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":1,"note":" """), 0xff, 0xfe, 0x22, 0x7d], ["invalid_utf8"]),
            ("huge", Encoding.UTF8.GetBytes($$"""{"device":"env-0001","pm25":1,"blob":"{{new string('x', 1024 * 1024)}}"}"""), ["payload_too_large"]),
            ("wrongtype", Encoding.UTF8.GetBytes($$"""{"device":"env-0001","ts":{{baseMs}},"pm25":"high"}"""), ["wrong_type"]),
            ("nan", Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":NaN}"""), ["malformed_payload"]),
            ("infinity", Encoding.UTF8.GetBytes($$"""{"device":"env-0001","ts":{{baseMs - 1}},"pm25":1e999}"""), ["non_finite"]),
            ("unknown", Encoding.UTF8.GetBytes($$"""{"device":"env-9999","ts":{{baseMs}},"pm25":3}"""), ["unknown_device"]),
            ("bounds", Encoding.UTF8.GetBytes($$"""{"device":"env-0002","ts":{{baseMs - 2}},"pm25":99999}"""), ["out_of_bounds"]),
            ("array", Encoding.UTF8.GetBytes("""[1,2,3]"""), ["malformed_payload"]),
            ("empty", [], ["malformed_payload"]),
        };

        int good = 0;
        for (int round = 0; round < 3; round++)
        {
            // Topics without a device level: the payloads name their devices (some unknown).
            foreach (var (name, payload, _) in bad)
            {
                pub.Publish("city/json/environment/env-0001", Good("env-0001")); good++;
                pub.Publish($"city/json/{name}-{round}", payload);
                pub.Publish("city/json/environment/env-0002", Good("env-0002")); good++;
            }
        }
        // A good message with one bad field: the good fields are stored, the bad one quarantined.
        pub.Publish("city/json/environment/env-0001/mixed",
            $$"""{"device":"env-0001","ts":{{baseMs + ++seq}},"seq":{{seq}},"pm25":5.5,"temp_f":"warm"}""");
        good++;
        await pub.FlushAsync();

        int expectedEntries = 3 * bad.Count + 1;
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") >= good
                                          && gateway.Quarantine.Total >= expectedEntries,
            TimeSpan.FromSeconds(60),
            () => $"stored {services.Influx.CountAsync(db, "environment", "seq").Result} of {good}, quarantined {gateway.Quarantine.Total} of {expectedEntries}");

        Assert.Equal(good, await services.Influx.CountAsync(db, "environment", "seq"));
        Assert.Equal(good, await services.Influx.CountAsync(db, "environment", "pm25"));
        // temp_f of the mixed message was refused; every other good message has a temperature.
        Assert.Equal(good - 1, await services.Influx.CountAsync(db, "environment", "temperature"));

        var entries = gateway.Quarantine.ReadAll().ToList();
        Assert.Equal(expectedEntries, entries.Count);
        foreach (var (name, payload, reasons) in bad)
        {
            for (int round = 0; round < 3; round++)
            {
                var entry = Assert.Single(entries, e => e.Topic == $"city/json/{name}-{round}");
                Assert.Contains(entry.Reason, reasons);
                Assert.False(string.IsNullOrWhiteSpace(entry.Detail));
                Assert.Equal(payload.Length, entry.PayloadBytes);
            }
        }
        var mixed = Assert.Single(entries, e => e.Topic == "city/json/environment/env-0001/mixed");
        Assert.Equal("wrong_type", mixed.Reason);
        Assert.Equal("temp_f", mixed.Field);
        var huge = entries.First(e => e.Reason == "payload_too_large");
        Assert.True(huge.Payload!.Length <= 4096, "the quarantine keeps a bounded part of an oversized payload");

        // Still running and ready: one more good message goes through.
        pub.Publish("city/json/environment/env-0001", Good("env-0001"));
        await pub.FlushAsync();
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == good + 1,
            TimeSpan.FromSeconds(30), () => "the message after the bad input was not stored");
        var (status, body) = await gateway.GetJsonAsync("/readyz");
        Assert.Equal(200, status);
        Assert.Equal(expectedEntries, body.GetProperty("quarantined").GetInt64());
    }

    [Fact]
    public async Task Frames_without_readings_are_counted_not_quarantined()
    {
        using var dir = new TempDir("empty");
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, ServicesFixture.NewDatabase("empty"), registry);
        using var pub = await Publisher.ConnectAsync(services.Broker.Url);
        pub.Publish("city/json/environment/env-0001", """{"device":"env-0001"}""");
        pub.Publish("city/json/environment/env-0001", """{"device":"env-0001","pm25":null}""");
        pub.Publish("city/senml/environment/env-0001", "[]");
        await pub.FlushAsync();
        await Wait.UntilAsync(() => gateway.Metrics.EmptyFrames == 3, TimeSpan.FromSeconds(30), () => $"empty frames {gateway.Metrics.EmptyFrames}");
        Assert.Equal(0, gateway.Quarantine.Total);
        var (_, body) = await gateway.GetJsonAsync("/readyz");
        Assert.Equal(3, body.GetProperty("emptyFrames").GetInt64());
    }

    [Fact]
    public async Task With_the_journal_off_messages_still_flow_through_the_in_memory_queue()
    {
        using var dir = new TempDir("nojournal");
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("nojournal");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, registry,
            "--Gateway:Journal:Enabled=false", "--Gateway:Journal:MemoryQueueCapacity=16");
        using var pub = await Publisher.ConnectAsync(services.Broker.Url);
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 10_000;
        for (int i = 1; i <= 200; i++)
            pub.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{ts + i}},"seq":{{i}},"pm25":3.5}""");
        await pub.FlushAsync();
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == 200,
            TimeSpan.FromSeconds(30), () => "messages were not stored with the journal off");
        var (_, body) = await gateway.GetJsonAsync("/readyz");
        Assert.False(body.GetProperty("journal").GetProperty("durable").GetBoolean());
    }
}
