using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// The local stack stopped and started again while QoS 1 messages wait for the gateway: mosquitto
/// runs from the stack's own configuration (deploy/mosquitto/local.conf.template, filled as
/// deploy/run-local.sh fills it), saves the gateway's persistent session on SIGTERM and restores it,
/// so every waiting message is stored once. Started as root without the template's "user" line,
/// mosquitto would run as "mosquitto", could not write its folder, and the messages would be gone.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class StackRestartTests(ServicesFixture services, ITestOutputHelper output)
{
    private const string Template = "deploy/mosquitto/local.conf.template";

    [Fact]
    public async Task QoS1_messages_waiting_for_the_gateway_survive_a_restart_of_the_local_stacks_broker()
    {
        using var broker = MosquittoBroker.FromTemplate(Repository.File(Template));
        using var dir = new TempDir("stackrestart");
        var fleet = new SimulatorOptions
        {
            BrokerUrl = broker.Url,
            TrafficDevices = 10, WaterDevices = 10, EnvironmentDevices = 5,
            MessagesPerDevice = 21,
            Seed = 11,
            Qos = 1,
        };
        var registry = dir.File("devices.json");
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(fleet), registry);
        var messages = FleetSimulator.Generate(fleet, DateTimeOffset.UtcNow.AddHours(-1), TimeSpan.FromSeconds(1)).ToList();
        int devices = fleet.TrafficDevices + fleet.WaterDevices + fleet.EnvironmentDevices;
        var (first, waiting) = (messages[..devices], messages[devices..]);
        Assert.Equal(500, waiting.Count);
        var db = ServicesFixture.NewDatabase("stackrestart");
        // The same client id on both runs: the broker keeps the session under it.
        string[] gatewaySettings = ["--Gateway:Mqtt:ClientId=stack-restart-" + Guid.NewGuid().ToString("N")[..8]];

        // The gateway's persistent session exists: it has subscribed (QoS 1) and taken one message
        // from every device (all routes), then it stops cleanly.
        await using (var gateway = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, registry, gatewaySettings))
        {
            await PublishAsync(broker, first);
            await Wait.UntilAsync(async () => await StoredAsync(db) == first.Count, TimeSpan.FromSeconds(30),
                () => "the first messages were not stored");
        }

        // While it is down, 500 QoS 1 messages wait in its session; then the stack stops.
        await PublishAsync(broker, waiting);
        broker.Stop();
        output.WriteLine("mosquitto, first run:\n" + broker.Log);
        Assert.Contains("Saving in-memory database", broker.Log); // the log is read to its end
        Assert.DoesNotContain("Error saving", broker.Log);
        Assert.True(File.Exists(Path.Combine(broker.Folder, "mosquitto.db")), "mosquitto saved no persistence file:\n" + broker.Log);

        // The stack starts again: the broker from the same configuration, then the gateway.
        broker.Start();
        await using (var gateway = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, registry, gatewaySettings))
        {
            var report = new SimulationReport();
            foreach (var m in messages) report.ByDevice[m.Device] = report.ByDevice.GetValueOrDefault(m.Device) + 1;
            var delivery = await Delivery.WaitForAsync(services.Influx, db, report, TimeSpan.FromSeconds(60));
            delivery.Print(output, "local stack restart with 500 QoS 1 messages waiting");
            output.WriteLine("mosquitto, second run:\n" + broker.Log);
            Assert.Equal(messages.Count, delivery.Published);
            Assert.Equal(0, delivery.Lost);
            Assert.Equal(0, delivery.Duplicates);
            Assert.Equal(messages.Count, delivery.Stored);
        }
    }

    private static async Task PublishAsync(MosquittoBroker broker, IEnumerable<PublishedMessage> messages)
    {
        using var pub = await Publisher.ConnectAsync(broker.Url);
        foreach (var m in messages) pub.Publish(m.Topic, m.Payload);
        // Acknowledged by the broker: queued in the gateway's session.
        await pub.FlushAsync();
    }

    private async Task<long> StoredAsync(string db)
    {
        long stored = 0;
        foreach (var measurement in Delivery.Measurements) stored += await services.Influx.CountAsync(db, measurement, "seq");
        return stored;
    }
}
