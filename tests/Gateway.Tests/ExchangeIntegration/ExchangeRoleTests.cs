using System.Net;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// Scaled out, one instance per city is the exchange's publisher: it makes the releases, serves the
/// partner API and pulls partners' feeds. The other instances (Gateway:Exchange:Publisher=false) only
/// ingest: their data reaches the releases through the shared InfluxDB database, and they run no
/// release job, serve no partner API and pull no feeds, so they need neither the signing key nor the
/// agreements.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class ExchangeRoleTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task Only_the_publisher_instance_releases_serves_partners_and_pulls_feeds_the_others_only_ingest()
    {
        using var dir = new TempDir("exchange-role");
        using var broker = new MosquittoBroker();
        var db = ServicesFixture.NewDatabase("role");
        var group = "role-" + Guid.NewGuid().ToString("N")[..6];
        var fleet = new SimulatorOptions
        {
            City = "citya", TrafficDevices = 12, WaterDevices = 12, EnvironmentDevices = 12, Seed = 7, Qos = 1, MessagesPerDevice = 20,
            BrokerUrl = broker.Url, RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(fleet), fleet.RegistryPath);
        Directory.CreateDirectory(dir.File("agreements"));
        File.WriteAllText(dir.File("agreements/cityb.json"), TwoCities.AgreementJson("cityb", "CITYB"));
        using (var signer = ReleaseSigner.Generate()) File.WriteAllText(dir.File("city-key.pem"), signer.ExportPkcs8PrivateKeyPem());

        // One configuration for every instance; only Publisher differs.
        string[] Config(string instance, bool publisher) =>
        [
            "--Gateway:Mqtt:SharedGroup=" + group,
            "--Gateway:Exchange:Enabled=true",
            "--Gateway:Exchange:PublicBaseUrl=https://exchange.citya.example",
            "--Gateway:Exchange:Publisher=" + (publisher ? "true" : "false"),
            "--Gateway:Exchange:CityId=citya",
            "--Gateway:Exchange:AgreementsPath=" + dir.File("agreements"),
            "--Gateway:Exchange:DataPath=" + dir.File(instance + "-exchange"),
            // Only the publisher's key file exists.
            "--Gateway:Exchange:Signing:KeyFile=" + (publisher ? dir.File("city-key.pem") : dir.File("no-key-here.pem")),
            "--Gateway:Exchange:ReleaseCheckSeconds=3600",
            "--Gateway:Exchange:Backfill=03:00:00",
            "--Gateway:Exchange:Partners:0:Id=cityb",
            "--Gateway:Exchange:Partners:0:WellKnownUrl=http://127.0.0.1:9/.well-known/city-exchange",
            "--Gateway:Exchange:Partners:0:ApiKey=our-key-at-cityb",
            "--Gateway:Exchange:Partners:0:PollSeconds=3600",
            "--Gateway:Normalisation:MaxAge=1.00:00:00",
        ];
        await using var publisher = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, fleet.RegistryPath, Config("publisher", true));
        await using var ingester = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, fleet.RegistryPath, Config("ingester", false));

        // Both take a share of the city's data, all of it lands in the one database.
        int published = await FleetFeed.PublishAndWaitAsync(services.Influx, broker.Url, db, fleet);
        output.WriteLine($"publisher received {publisher.Metrics.Received}, ingest-only instance {ingester.Metrics.Received} of {published}");
        Assert.True(ingester.Metrics.Received > 0, "the ingest-only instance got no share of the messages");
        Assert.True(publisher.Metrics.Received > 0, "the publisher got no share of the messages");
        Assert.Equal(published, publisher.Metrics.Received + ingester.Metrics.Received);

        // The ingest-only instance: no release job, no exchange state, no federation client, no partner API.
        Assert.Empty(ingester.Services.GetServices<IHostedService>().OfType<ReleaseJob>());
        Assert.Null(ingester.Services.GetService<ExchangeContext>());
        Assert.Null(ingester.Services.GetService<FederationClient>());
        using var http = new HttpClient();
        foreach (var path in new[] { "/.well-known/city-exchange", "/api/exchange/v1/feed", "/api/exchange/v1/agreement" })
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(ingester.BaseUrl + path)).StatusCode);
        var (_, ready) = await ingester.GetJsonAsync("/readyz");
        Assert.Equal("ingest-only", ready.GetProperty("exchange").GetProperty("role").GetString());
        Assert.False(Directory.Exists(dir.File("ingester-exchange")), "the ingest-only instance wrote exchange state");

        // The publisher releases the windows, over what both instances stored.
        var (_, publisherReady) = await publisher.GetJsonAsync("/readyz");
        Assert.Equal("publisher", publisherReady.GetProperty("exchange").GetProperty("role").GetString());
        Assert.NotNull(publisher.Services.GetService<FederationClient>());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(publisher.BaseUrl + "/.well-known/city-exchange")).StatusCode);
        var job = publisher.Services.GetServices<IHostedService>().OfType<ReleaseJob>().Single();
        int made = await job.RunOnceAsync(DateTimeOffset.UtcNow, default);
        output.WriteLine($"publisher made {made} releases");
        Assert.True(made > 0, "the publisher made no release");
        Assert.False(Directory.Exists(dir.File("ingester-exchange")));
    }
}
