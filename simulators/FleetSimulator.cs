using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using CityGateway.Normalisation;

namespace CityGateway.Simulators;

/// <summary>
/// Simulates a city's fleet of traffic, water and environment sensors publishing over MQTT in four
/// payload formats (flat JSON, SenML, ChirpStack v4 and The Things Stack v3 uplinks).
/// </summary>
public static class FleetSimulator
{
    // Leaves out nulls and false flags ("custom": false) to keep the file readable.
    private static readonly JsonSerializerOptions RegistryJson = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };

    /// <summary>The devices the options describe, in publishing order.</summary>
    public static Fleet CreateFleet(SimulatorOptions o) => Fleet.Create(o);

    /// <summary>The device registry for the fleet: every device type in use with its field mappings,
    /// and every device keyed by the id the gateway sees (DevEUI for ChirpStack devices).</summary>
    public static DeviceRegistryFile BuildRegistry(SimulatorOptions o) => BuildRegistry(Fleet.Create(o));

    public static DeviceRegistryFile BuildRegistry(Fleet fleet)
    {
        var registry = new DeviceRegistryFile { City = fleet.City };
        var used = fleet.Devices.Select(d => d.Type).ToHashSet();
        foreach (var type in DeviceTypes.All.Where(used.Contains))
        {
            var entry = new DeviceTypeEntry { Domain = type.Domain };
            foreach (var f in type.Fields)
                entry.Fields[f.Name] = new FieldMapping { Metric = f.Metric, Unit = f.Unit };
            entry.Fields[DeviceTypes.SequenceField] = new FieldMapping { Metric = DeviceTypes.SequenceField, Custom = true, Type = "integer" };
            registry.DeviceTypes[type.Name] = entry;
        }
        foreach (var d in fleet.Devices.OrderBy(d => Array.IndexOf(DeviceTypes.Domains, d.Domain)).ThenBy(d => d.Index))
        {
            registry.Devices[d.Key] = new DeviceEntry
            {
                Type = d.Type.Name,
                District = d.District,
                Site = d.Site,
                Latitude = d.Latitude,
                Longitude = d.Longitude,
            };
        }
        return registry;
    }

    public static string SerializeRegistry(DeviceRegistryFile registry) => JsonSerializer.Serialize(registry, RegistryJson);

    public static void WriteRegistry(DeviceRegistryFile registry, string path) => WriteFile(path, SerializeRegistry(registry) + "\n");

    /// <summary>
    /// Produces the messages of a run without a broker: message k of the fleet (in publishing order)
    /// is stamped <paramref name="start"/> + k * <paramref name="interval"/>. Ends when every device has
    /// sent <see cref="SimulatorOptions.MessagesPerDevice"/> messages or <see cref="SimulatorOptions.Duration"/>
    /// of simulated time has passed; without either it does not end.
    /// </summary>
    public static IEnumerable<PublishedMessage> Generate(SimulatorOptions o, DateTimeOffset start, TimeSpan interval)
    {
        var fleet = Fleet.Create(o);
        long startMs = start.ToUnixTimeMilliseconds();
        long k = 0;
        while (true)
        {
            bool any = false;
            foreach (var device in fleet.Devices)
            {
                if (o.MessagesPerDevice is { } limit && device.Sequence >= limit) continue;
                var offset = interval * k;
                if (o.Duration is { } duration && offset >= duration) yield break;
                any = true;
                var (seq, ts, values) = device.Next(startMs + (long)offset.TotalMilliseconds, o.CurveTime);
                yield return Payloads.Build(fleet, device, seq, ts, values);
                k++;
            }
            if (!any) yield break;
        }
    }

    /// <summary>
    /// Writes the registry (when <see cref="SimulatorOptions.RegistryPath"/> is set), connects and
    /// publishes until the limits are reached or <paramref name="ct"/> is cancelled, waits for the
    /// outstanding acknowledgements, and returns the report (also written to
    /// <see cref="SimulatorOptions.ReportPath"/>). <paramref name="onPublished"/> is called on the
    /// publishing task for every message the client accepted. Cancellation ends the run normally with
    /// <see cref="SimulationReport.Cancelled"/> set. Throws <see cref="SimulatorConnectionException"/>
    /// when the broker cannot be reached within <see cref="SimulatorOptions.ConnectTimeout"/>.
    /// </summary>
    public static async Task<SimulationReport> RunAsync(SimulatorOptions o, Action<PublishedMessage>? onPublished = null, CancellationToken ct = default)
    {
        o.Validate();
        var fleet = Fleet.Create(o);
        if (!string.IsNullOrEmpty(o.RegistryPath)) WriteRegistry(BuildRegistry(fleet), o.RegistryPath);

        var report = new SimulationReport
        {
            StartedAt = DateTimeOffset.UtcNow,
            Broker = o.BrokerUrl,
            City = o.City,
            Seed = o.Seed,
            Qos = o.Qos,
            Devices = fleet.Devices.Count,
        };
        var domains = DeviceTypes.Domains;
        var byDomain = new long[domains.Length];
        var rejectedByDomain = new long[domains.Length];
        foreach (var d in fleet.Devices)
        {
            report.ByDomain[d.Domain] = 0;
            report.ByFormat[d.Format] = 0;
            report.ByDevice[d.Key] = 0;
        }
        long target = o.MessagesPerDevice is { } m ? (long)m * fleet.Devices.Count : 0;
        long failed = 0;
        var clock = Stopwatch.StartNew();

        MqttPublisher? publisher = null;
        using var progress = new ProgressLine(o.Progress, () => ProgressLine.Format(clock.Elapsed,
            publisher?.Published ?? 0, target, publisher?.Acknowledged ?? 0, publisher?.Outstanding ?? 0,
            Interlocked.Read(ref failed) + (publisher?.Rejected ?? 0), publisher?.IsConnected ?? false, o.Qos));
        var sink = o.Log;
        Action<string> log = sink is null ? _ => { } : progress.Enabled ? msg => progress.Log(sink, msg) : sink;

        publisher = new MqttPublisher(o, log, tag => Interlocked.Increment(ref rejectedByDomain[tag]));
        try
        {
            try
            {
                await publisher.ConnectAsync(o.ConnectTimeout, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                report.Cancelled = true;
            }

            if (!report.Cancelled)
            {
                clock.Restart();
                try
                {
                    await PublishLoopAsync(o, fleet, publisher, byDomain, report, onPublished, log,
                        () => Interlocked.Increment(ref failed), clock, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    report.Cancelled = true;
                }
                report.Unacknowledged = await publisher.DrainAsync(o.DrainTimeout).ConfigureAwait(false);
            }
        }
        finally
        {
            publisher.Stop();
            publisher.Dispose();
        }

        report.FinishedAt = DateTimeOffset.UtcNow;
        report.Published = publisher.Published;
        report.Acknowledged = publisher.Acknowledged;
        report.Rejected = publisher.Rejected;
        report.Failed = Interlocked.Read(ref failed) + publisher.Rejected;
        for (int i = 0; i < domains.Length; i++)
        {
            if (!report.ByDomain.ContainsKey(domains[i])) continue;
            report.ByDomain[domains[i]] = byDomain[i];
            report.ExpectedPoints[domains[i]] = byDomain[i] - Interlocked.Read(ref rejectedByDomain[i]);
        }
        if (!string.IsNullOrEmpty(o.ReportPath)) WriteFile(o.ReportPath, report.ToJson() + "\n");
        return report;
    }

    private static async Task PublishLoopAsync(SimulatorOptions o, Fleet fleet, MqttPublisher publisher, long[] byDomain,
        SimulationReport report, Action<PublishedMessage>? onPublished, Action<string> log, Action countFailure,
        Stopwatch clock, CancellationToken ct)
    {
        // Message k is due at origin + k / rate. After a stall (broker away, in-flight window full)
        // the origin moves forward instead of bursting to catch up.
        double origin = 0;
        long k = 0;
        long failures = 0;
        var domainIndex = DeviceTypes.Domains.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i);
        while (true)
        {
            bool any = false;
            foreach (var device in fleet.Devices)
            {
                ct.ThrowIfCancellationRequested();
                if (o.MessagesPerDevice is { } limit && device.Sequence >= limit) continue;
                if (o.Duration is { } duration && clock.Elapsed >= duration) return;
                any = true;

                if (o.Rate > 0)
                {
                    double due = origin + k / o.Rate;
                    double now = clock.Elapsed.TotalSeconds;
                    if (now - due > 1.0) origin += now - due;
                    else if (due - now > 0.001)
                    {
                        var wait = TimeSpan.FromSeconds(due - now);
                        if (o.Duration is { } dur && clock.Elapsed + wait > dur) wait = dur - clock.Elapsed;
                        if (wait > TimeSpan.Zero) await Task.Delay(wait, ct).ConfigureAwait(false);
                        if (o.Duration is { } d2 && clock.Elapsed >= d2) return;
                    }
                }
                // While the broker is away, hold the readings back instead of losing them: the
                // network thread reconnects and the devices carry on where they were.
                if (!publisher.IsConnected && !await publisher.WaitConnectedAsync(clock, o.Duration, ct).ConfigureAwait(false))
                    return;
                await publisher.AcquireAsync(ct).ConfigureAwait(false);

                var (seq, ts, values) = device.Next(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), o.CurveTime);
                var message = Payloads.Build(fleet, device, seq, ts, values);
                int domain = domainIndex[device.Domain];
                k++;
                while (true)
                {
                    if (publisher.Publish(message.Topic, message.Payload, o.Qos, domain, out var error, out bool disconnected))
                    {
                        byDomain[domain]++;
                        report.ByFormat[device.Format]++;
                        report.ByDevice[device.Key]++;
                        onPublished?.Invoke(message);
                        break;
                    }
                    if (disconnected)
                    {
                        // The connection dropped between the check above and the publish: send the same
                        // message again once it is back.
                        await Task.Delay(20, ct).ConfigureAwait(false);
                        if (!await publisher.WaitConnectedAsync(clock, o.Duration, ct).ConfigureAwait(false)) return;
                        await publisher.AcquireAsync(ct).ConfigureAwait(false);
                        continue;
                    }
                    countFailure();
                    if (failures++ % 1000 == 0) log($"publish failed ({failures} so far): {error}");
                    break;
                }
            }
            if (!any) return;
        }
    }

    private static void WriteFile(string path, string text)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text);
    }
}
