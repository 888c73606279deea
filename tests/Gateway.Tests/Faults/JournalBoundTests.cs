using System.Diagnostics;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>
/// A small journal bound with InfluxDB down: the gateway stops taking frames at the bound (the
/// broker keeps them in the persistent session), says so in /readyz and the gateway measurement,
/// and drains everything once InfluxDB is back. Memory stays bounded throughout.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class JournalBoundTests(ServicesFixture services, ITestOutputHelper output)
{
    private const long MaxBytes = 2 << 20;

    [Fact]
    public async Task Intake_pauses_at_the_journal_bound_and_everything_is_stored_after_InfluxDB_returns()
    {
        using var influx = new InfluxServer();
        using var dir = new TempDir("bound");
        var options = new SimulatorOptions
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 20, WaterDevices = 20, EnvironmentDevices = 20,
            Rate = 3000,
            MessagesPerDevice = 400,
            Seed = 8,
            Qos = 1,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(FleetSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("bound");
        await using var gateway = new GatewayProcess(services.Broker.Url, influx.Url, db, options.RegistryPath, dir.Path,
            $"--Gateway:Journal:MaxBytes={MaxBytes}", $"--Gateway:Journal:SegmentBytes={256 << 10}");
        await gateway.StartAsync();
        influx.Stop();

        var run = FleetSimulator.RunAsync(options);
        long maxJournal = 0;
        bool sawFull = false, sawPaused = false;
        var sw = Stopwatch.StartNew();
        while (!run.IsCompleted)
        {
            var (status, body) = await gateway.ReadyAsync();
            var journal = body.GetProperty("journal");
            maxJournal = Math.Max(maxJournal, journal.GetProperty("bytes").GetInt64());
            if (journal.GetProperty("full").GetBoolean())
            {
                sawFull = true;
                Assert.Equal(503, status);
            }
            sawPaused |= body.GetProperty("broker").GetProperty("detail").GetString()!.StartsWith("paused");
            gateway.SampleMemory();
            await Task.Delay(100);
        }
        var report = await run;
        Assert.Equal(report.Published, report.Acknowledged);
        Assert.True(sawFull, "the journal never reported itself full");
        Assert.True(sawPaused, "the MQTT source never reported itself paused");
        // At the bound QoS 1 messages are left at the broker: only the append that crossed it overshoots.
        Assert.True(maxJournal < MaxBytes + (1 << 20), $"journal grew to {maxJournal} bytes, bound {MaxBytes}");

        influx.Start();
        var delivery = await Delivery.WaitForAsync(influx, db, report, TimeSpan.FromSeconds(120));
        for (int i = 0; i < 20; i++) { gateway.SampleMemory(); await Task.Delay(50); }
        delivery.Print(output, "journal bound with InfluxDB down");
        output.WriteLine($"bound {MaxBytes} bytes, largest journal seen {maxJournal} bytes; payload published {report.Published} messages; " +
                         $"peak RSS {gateway.PeakRssMiB:F0} MiB; drained at {sw.Elapsed.TotalSeconds:F0} s");
        Assert.Equal(0, delivery.Lost);
        Assert.Equal(0, delivery.Duplicates);
        Assert.True(gateway.PeakRssMiB < 400, $"peak RSS {gateway.PeakRssMiB:F0} MiB");

        // The full state reached the gateway measurement too, once InfluxDB was back.
        await Wait.UntilAsync(async () => await influx.CountAsync(db, "gateway", "journal_full", "\"journal_full\" = true") > 0,
            TimeSpan.FromSeconds(30), () => "no gateway point with journal_full = true");
        var (finalStatus, final) = await gateway.ReadyAsync();
        Assert.Equal(200, finalStatus);
        Assert.False(final.GetProperty("journal").GetProperty("full").GetBoolean());
    }
}
