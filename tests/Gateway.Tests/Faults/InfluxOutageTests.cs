using System.Diagnostics;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// InfluxDB stops for 30 s in the middle of a 60 s run at 2,000 msg/s (QoS 1): the journal holds
/// the frames, the writer backs off and resumes in order, and every message is stored once.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class InfluxOutageTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task Every_message_is_stored_once_after_a_30_second_InfluxDB_outage()
    {
        using var influx = new InfluxServer();
        using var dir = new TempDir("outage");
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 20, WaterDevices = 20, EnvironmentDevices = 20,
            Rate = 2000,
            Duration = TimeSpan.FromSeconds(60),
            Seed = 3,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("outage");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, influx.Url, db, options.RegistryPath,
            "--Gateway:Influx:RetryMaxMs=2000");

        var run = FleetSimulator.RunAsync(options);
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(15));
        influx.Stop();
        var stoppedAt = sw.Elapsed;
        await Wait.UntilAsync(() => !gateway.Health.InfluxReachable, TimeSpan.FromSeconds(20), () => "the gateway did not notice InfluxDB stopping");
        long peakPending = 0;
        while (sw.Elapsed < stoppedAt + TimeSpan.FromSeconds(30))
        {
            peakPending = Math.Max(peakPending, gateway.Metrics.QueueDepth());
            await Task.Delay(200);
        }
        influx.Start();
        var restartedAt = sw.Elapsed;
        var report = await run;
        Assert.Equal(report.Published, report.Acknowledged);

        var delivery = await Delivery.WaitForAsync(influx, db, report, TimeSpan.FromSeconds(120));
        var drained = sw.Elapsed;
        delivery.Print(output, "InfluxDB outage");
        output.WriteLine($"InfluxDB down from {stoppedAt.TotalSeconds:F1} s to {restartedAt.TotalSeconds:F1} s; " +
                         $"peak frames waiting in the journal {peakPending}; all stored at {drained.TotalSeconds:F1} s; " +
                         $"publish rate {report.Published / report.DurationSeconds:F0} msg/s; write failures {gateway.Metrics.WriteFailures}");
        Assert.True(report.Published >= 100_000, $"the run published only {report.Published} messages");
        Assert.Equal(0, delivery.Lost);
        Assert.Equal(0, delivery.Duplicates);
        Assert.Equal(report.Published, delivery.Stored);
        Assert.True(peakPending > 10_000, "the outage should have left frames waiting in the journal");
    }
}
