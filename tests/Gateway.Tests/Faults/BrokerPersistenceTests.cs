using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// mosquitto with persistence restarted mid-run: QoS 1 messages the broker acknowledged are kept in
/// the gateway's persistent session across the restart and delivered afterwards; none is lost.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class BrokerPersistenceTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task No_QoS1_message_is_lost_across_a_broker_restart_with_persistence()
    {
        using var broker = new MosquittoBroker(persistence: true);
        using var dir = new TempDir("brokerpersist");
        var options = new SimulatorOptions
        {
            BrokerUrl = broker.Url,
            TrafficDevices = 10, WaterDevices = 10, EnvironmentDevices = 10,
            Rate = 1000,
            Duration = TimeSpan.FromSeconds(20),
            Seed = 5,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("bpersist");
        await using var gateway = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, options.RegistryPath,
            "--Gateway:Mqtt:ReconnectMinSeconds=1", "--Gateway:Mqtt:ReconnectMaxSeconds=2");

        var run = FleetSimulator.RunAsync(options);
        for (int restart = 0; restart < 2; restart++)
        {
            await Task.Delay(TimeSpan.FromSeconds(6));
            broker.Stop();
            await Wait.UntilAsync(() => !gateway.Health.BrokerConnected, TimeSpan.FromSeconds(20), () => "the gateway did not see the broker stop");
            broker.Start();
            await Wait.UntilAsync(() => gateway.Health.BrokerConnected, TimeSpan.FromSeconds(30), () => $"no reconnect: {gateway.Health.BrokerDetail}");
        }
        var report = await run;
        var delivery = await Delivery.WaitForAsync(services.Influx, db, report, TimeSpan.FromSeconds(60));
        delivery.Print(output, "broker restart x2 with persistence");
        output.WriteLine($"simulator: acknowledged {report.Acknowledged}, failed {report.Failed}, unacknowledged {report.Unacknowledged}");
        Assert.Equal(report.Published, report.Acknowledged);
        Assert.Equal(0, delivery.Lost);
        Assert.Equal(0, delivery.Duplicates);
    }
}
