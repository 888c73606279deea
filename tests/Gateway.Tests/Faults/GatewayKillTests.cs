using System.Diagnostics;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// kill -9 of the gateway mid-stream at QoS 1 with a persistent session, restarted each time.
/// Messages published while it is down wait in the broker; frames in the journal are replayed.
/// A QoS 1 message is acknowledged only once the journal has synced it, so a kill loses none; one
/// in the journal whose acknowledgement had not left comes again and is recognised, not stored twice.
/// GATEWAY_FAULT_KILLS sets the number of kills (default 3; README's soak command uses 20).
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class GatewayKillTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task Killed_gateway_restarts_and_loses_and_duplicates_nothing()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("GATEWAY_FAULT_KILLS"), out var k) && k > 0 ? k : 3;
        using var dir = new TempDir("kill");
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 10, WaterDevices = 10, EnvironmentDevices = 10,
            Rate = 1000,
            Duration = TimeSpan.FromSeconds(Math.Max(20, kills * 4 + 6)),
            Seed = 11,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("kill");
        await using var gateway = new GatewayProcess(services.Broker.Url, services.Influx.Url, db, options.RegistryPath, dir.Path);
        await gateway.StartAsync();

        var run = FleetSimulator.RunAsync(options);
        var random = new Random(kills);
        var sw = Stopwatch.StartNew();
        var downtimes = new List<double>();
        for (int i = 0; i < kills; i++)
        {
            // Kill at a random moment while messages flow, then start again at once.
            await Task.Delay(TimeSpan.FromMilliseconds(1500 + random.Next(1500)));
            gateway.Kill();
            var down = Stopwatch.StartNew();
            await gateway.StartAsync();
            downtimes.Add(down.Elapsed.TotalSeconds);
        }
        var report = await run;
        Assert.Equal(report.Published, report.Acknowledged);
        var delivery = await Delivery.WaitForAsync(services.Influx, db, report, TimeSpan.FromSeconds(90));
        delivery.Print(output, $"gateway kill -9 x{kills}");
        output.WriteLine($"restarts took {downtimes.Min():F1}–{downtimes.Max():F1} s; run {sw.Elapsed.TotalSeconds:F0} s; peak RSS {gateway.PeakRssMiB:F0} MiB");
        foreach (var line in gateway.Log.Split('\n').Where(l => l.Contains("[6001]") || l.Contains("[6002]")))
            output.WriteLine("  " + line.Trim());

        Assert.Equal(0, delivery.Duplicates);
        Assert.Equal(0, delivery.Lost);
        Assert.Equal(report.Published - delivery.Lost, delivery.Distinct);
    }
}
