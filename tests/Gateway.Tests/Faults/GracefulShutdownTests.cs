using System.Diagnostics;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>SIGTERM: intake stops, the pipeline drains and writes, the journal is committed, the process exits 0.</summary>
[Collection(ServicesCollection.Name)]
public sealed class GracefulShutdownTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task Sigterm_drains_writes_and_commits_before_exiting()
    {
        using var dir = new TempDir("sigterm");
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 10, WaterDevices = 10, EnvironmentDevices = 10,
            Rate = 0,
            MessagesPerDevice = 200,
            Seed = 13,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("sigterm");
        await using var gateway = new GatewayProcess(services.Broker.Url, services.Influx.Url, db, options.RegistryPath, dir.Path,
            "--Gateway:Influx:FlushIntervalMs=5000", "--Gateway:Influx:BatchSize=100000");
        await gateway.StartAsync();

        var report = await FleetSimulator.RunAsync(options);
        Assert.Equal(6000, report.Acknowledged);
        // Every message is in the gateway, most of it still in a batch waiting for its 5 s flush.
        await Wait.UntilAsync(async () => (await gateway.ReadyAsync()).Body.GetProperty("received").GetInt64() >= report.Published,
            TimeSpan.FromSeconds(30), () => "the gateway did not receive everything");
        var sw = Stopwatch.StartNew();
        int exitCode = gateway.Terminate(TimeSpan.FromSeconds(30));
        output.WriteLine($"SIGTERM to exit: {sw.Elapsed.TotalMilliseconds:F0} ms, exit code {exitCode}");
        Assert.Equal(0, exitCode);

        // Everything is stored before the process ended: no waiting here.
        var delivery = await Delivery.CheckAsync(services.Influx, db, report);
        delivery.Print(output, "SIGTERM");
        Assert.Equal(0, delivery.Lost);

        // And committed: a new start has nothing to replay.
        await gateway.StartAsync();
        var (_, ready) = await gateway.ReadyAsync();
        Assert.Equal(0, ready.GetProperty("journal").GetProperty("pending").GetInt64());
        Assert.DoesNotContain("[6002]", gateway.Log);
    }
}
