using CityGateway.Sources.Mqtt;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>TLS and username/password against a real mosquitto that refuses anonymous clients.</summary>
[Collection(ServicesCollection.Name)]
public sealed class BrokerSecurityTests(ServicesFixture services)
{
    private const string User = "gateway";
    private const string Password = "s3cret-for-this-test";

    private static MosquittoBroker SecureBroker(TempDir dir, out string caFile)
    {
        var (ca, cert, key) = TestCertificates.Create(dir.Path);
        caFile = ca;
        return new MosquittoBroker(
            listenerSettings: $"cafile {ca}\ncertfile {cert}\nkeyfile {key}",
            users: new Dictionary<string, string> { [User] = Password, ["device"] = "device-pass" });
    }

    [Fact]
    public async Task Gateway_connects_over_TLS_with_credentials_and_stores_messages()
    {
        using var dir = new TempDir("tls");
        using var broker = SecureBroker(dir, out var ca);
        var url = $"mqtts://127.0.0.1:{broker.Port}";
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("tls");
        await using var gateway = await GatewayRunner.StartAsync(url, services.Influx.Url, db, registry,
            "--Gateway:Mqtt:Username=" + User, "--Gateway:Mqtt:Password=" + Password, "--Gateway:Mqtt:Tls:CaFile=" + ca);

        using var pub = await Publisher.ConnectAsync(new MqttConnectionOptions
        {
            Url = url, Username = "device", Password = "device-pass", Tls = new MqttTlsOptions { CaFile = ca },
        });
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 1; i <= 5; i++)
            pub.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{ts + i}},"seq":{{i}},"pm25":4.25}""");
        await pub.FlushAsync();
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == 5,
            TimeSpan.FromSeconds(30), () => "messages over TLS were not stored");
        Assert.Contains("connected", gateway.Health.BrokerDetail);
    }

    [Fact]
    public async Task Wrong_password_is_reported_as_refused_and_not_ready()
    {
        using var dir = new TempDir("tlsbad");
        using var broker = SecureBroker(dir, out var ca);
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        await using var gateway = await GatewayRunner.StartAsync($"mqtts://127.0.0.1:{broker.Port}", services.Influx.Url,
            ServicesFixture.NewDatabase("tlsbad"), registry, waitReady: false,
            "--Gateway:Mqtt:Username=" + User, "--Gateway:Mqtt:Password=wrong", "--Gateway:Mqtt:Tls:CaFile=" + ca);
        await Wait.UntilAsync(() => gateway.Health.BrokerDetail.Contains("refused"), TimeSpan.FromSeconds(30),
            () => $"broker state: {gateway.Health.BrokerDetail}");
        var (status, body) = await gateway.GetJsonAsync("/readyz");
        Assert.Equal(503, status);
        var detail = body.GetProperty("broker").GetProperty("detail").GetString()!;
        Assert.Contains("refused", detail);
        Assert.DoesNotContain("wrong", detail); // the password never appears
    }
}
