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
    /// of simulated time has passed; without either it does not end. The backfill of
    /// <see cref="RunAsync"/> is produced by the same code.
    /// </summary>
    public static IEnumerable<PublishedMessage> Generate(SimulatorOptions o, DateTimeOffset start, TimeSpan interval) =>
        Generate(Fleet.Create(o), start, interval, o.Duration, o.MessagesPerDevice, o.CurveTime);

    /// <summary>The fleet's message interval for a backfill in which each device reports once every
    /// <see cref="SimulatorOptions.BackfillInterval"/>: the devices take turns, evenly spaced.</summary>
    public static TimeSpan BackfillFleetInterval(SimulatorOptions o, int devices) => o.BackfillInterval / devices;

    /// <summary>How many messages the backfill of <see cref="SimulatorOptions.Backfill"/> publishes
    /// for a fleet of <paramref name="devices"/> (0 without a backfill).</summary>
    public static long BackfillCount(SimulatorOptions o, int devices)
    {
        if (o.Backfill is not { } window) return 0;
        long step = BackfillFleetInterval(o, devices).Ticks;
        return (window.Ticks + step - 1) / step;
    }

    /// <summary>Advances <paramref name="fleet"/>'s devices: message k is stamped <paramref name="start"/>
    /// + k * <paramref name="interval"/> until <paramref name="duration"/> of simulated time or
    /// <paramref name="messagesPerDevice"/> more messages per device.</summary>
    private static IEnumerable<PublishedMessage> Generate(Fleet fleet, DateTimeOffset start, TimeSpan interval, TimeSpan? duration,
        int? messagesPerDevice, DateTimeOffset? curveTime)
    {
        long startMs = start.ToUnixTimeMilliseconds();
        var already = fleet.Devices.Select(d => d.Sequence).ToArray();
        long k = 0;
        while (true)
        {
            bool any = false;
            for (int i = 0; i < fleet.Devices.Count; i++)
            {
                var device = fleet.Devices[i];
                if (messagesPerDevice is { } limit && device.Sequence - already[i] >= limit) continue;
                var offset = interval * k;
                if (duration is { } d && offset >= d) yield break;
                any = true;
                var (seq, ts, values) = device.Next(startMs + (long)offset.TotalMilliseconds, curveTime);
                yield return Payloads.Build(fleet, device, seq, ts, values);
                k++;
            }
            if (!any) yield break;
        }
    }

    /// <summary>
    /// Writes the registry (when <see cref="SimulatorOptions.RegistryPath"/> is set), connects,
    /// publishes the backfill (when <see cref="SimulatorOptions.Backfill"/> is set), then publishes
    /// live until the limits are reached or <paramref name="ct"/> is cancelled, waits for the
    /// outstanding acknowledgements, and returns the report (also written to
    /// <see cref="SimulatorOptions.ReportPath"/>). <paramref name="onPublished"/> is called on the
    /// publishing task for every message the client accepted, backfilled ones included. Cancellation
    /// ends the run normally with <see cref="SimulationReport.Cancelled"/> set. Throws
    /// <see cref="SimulatorConnectionException"/> when the broker cannot be reached within
    /// <see cref="SimulatorOptions.ConnectTimeout"/>.
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
        var rejectedByDomain = new long[domains.Length];
        foreach (var d in fleet.Devices)
        {
            report.ByDomain[d.Domain] = 0;
            report.ByFormat[d.Format] = 0;
            report.ByDevice[d.Key] = 0;
        }
        long target = o.MessagesPerDevice is { } m ? (long)m * fleet.Devices.Count : 0;
        long backfillTarget = BackfillCount(o, fleet.Devices.Count);
        var clock = Stopwatch.StartNew();

        MqttPublisher? publisher = null;
        var run = new Run(o, fleet, report, onPublished);
        using var progress = new ProgressLine(o.Progress, () =>
        {
            long published = publisher?.Published ?? 0, backfilled = Interlocked.Read(ref run.Backfilled);
            bool backfilling = Volatile.Read(ref run.Backfilling);
            return ProgressLine.Format(clock.Elapsed, backfilling ? "backfill" : "published",
                backfilling ? published : published - backfilled, backfilling ? backfillTarget : target,
                publisher?.Acknowledged ?? 0, publisher?.Outstanding ?? 0,
                run.Failed + (publisher?.Rejected ?? 0), publisher?.IsConnected ?? false, o.Qos)
                + (!backfilling && backfilled > 0 ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"  (+{backfilled} backfilled)") : "");
        });
        var sink = o.Log;
        Action<string> log = sink is null ? _ => { } : progress.Enabled ? msg => progress.Log(sink, msg) : sink;
        run.Log = log;

        publisher = new MqttPublisher(o, log, tag => Interlocked.Increment(ref rejectedByDomain[tag]));
        run.Publisher = publisher;
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
                try
                {
                    if (o.Backfill is { } window)
                    {
                        Volatile.Write(ref run.Backfilling, true);
                        clock.Restart();
                        await BackfillAsync(run, window, log, ct).ConfigureAwait(false);
                        Volatile.Write(ref run.Backfilling, false);
                    }
                    clock.Restart();
                    await PublishLoopAsync(run, clock, ct).ConfigureAwait(false);
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
        report.Backfilled = Interlocked.Read(ref run.Backfilled);
        report.Acknowledged = publisher.Acknowledged;
        report.Rejected = publisher.Rejected;
        report.Failed = run.Failed + publisher.Rejected;
        for (int i = 0; i < domains.Length; i++)
        {
            if (!report.ByDomain.ContainsKey(domains[i])) continue;
            report.ByDomain[domains[i]] = run.ByDomain[i];
            report.ExpectedPoints[domains[i]] = run.ByDomain[i] - Interlocked.Read(ref rejectedByDomain[i]);
        }
        if (!string.IsNullOrEmpty(o.ReportPath)) WriteFile(o.ReportPath, report.ToJson() + "\n");
        return report;
    }

    /// <summary>The state one run's publishing shares between the backfill and the live phase.</summary>
    private sealed class Run(SimulatorOptions o, Fleet fleet, SimulationReport report, Action<PublishedMessage>? onPublished)
    {
        public readonly SimulatorOptions Options = o;
        public readonly Fleet Fleet = fleet;
        public readonly SimulationReport Report = report;
        public readonly Action<PublishedMessage>? OnPublished = onPublished;
        public readonly long[] ByDomain = new long[DeviceTypes.Domains.Length];
        public readonly Dictionary<string, int> DomainIndex =
            DeviceTypes.Domains.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i);
        public MqttPublisher Publisher = null!;
        public Action<string> Log = _ => { };
        public long Backfilled;
        public bool Backfilling;
        private long _failed;

        public long Failed => Interlocked.Read(ref _failed);

        public long CountFailure() => Interlocked.Increment(ref _failed);
    }

    /// <summary>
    /// The readings the devices buffered while "offline": [now - window, now) at one reading per
    /// device per <see cref="SimulatorOptions.BackfillInterval"/>, in time order, each with its own
    /// timestamp, at <see cref="SimulatorOptions.BackfillQos"/> and as fast as the in-flight window
    /// allows. <see cref="SimulatorOptions.MessagesPerDevice"/> and <see cref="SimulatorOptions.Duration"/>
    /// are the live phase's and do not count it.
    /// </summary>
    private static async Task BackfillAsync(Run run, TimeSpan window, Action<string> log, CancellationToken ct)
    {
        var o = run.Options;
        var end = DateTimeOffset.UtcNow;
        var start = end - window;
        var interval = BackfillFleetInterval(o, run.Fleet.Devices.Count);
        run.Report.BackfillFrom = start;
        run.Report.BackfillTo = end;
        run.Report.BackfillIntervalSeconds = o.BackfillInterval.TotalSeconds;
        log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"backfill: {BackfillCount(o, run.Fleet.Devices.Count)} readings from {start:u} to {end:u}, one per device every {DurationText.Format(o.BackfillInterval)}, QoS {o.BackfillQos}"));
        foreach (var message in Generate(run.Fleet, start, interval, window, null, o.CurveTime))
        {
            ct.ThrowIfCancellationRequested();
            if (!run.Publisher.IsConnected) await run.Publisher.WaitConnectedAsync(Stopwatch.StartNew(), null, ct).ConfigureAwait(false);
            await run.Publisher.AcquireAsync(ct).ConfigureAwait(false);
            if (!await PublishAsync(run, message, o.BackfillQos, null, null, ct).ConfigureAwait(false)) return;
        }
    }

    private static async Task PublishLoopAsync(Run run, Stopwatch clock, CancellationToken ct)
    {
        var o = run.Options;
        var fleet = run.Fleet;
        var publisher = run.Publisher;
        // Message k is due at origin + k / rate. After a stall (broker away, in-flight window full)
        // the origin moves forward instead of bursting to catch up.
        double origin = 0;
        long k = 0;
        // The live limit counts live messages only, not the backfilled ones.
        var already = fleet.Devices.Select(d => d.Sequence).ToArray();
        while (true)
        {
            bool any = false;
            for (int i = 0; i < fleet.Devices.Count; i++)
            {
                var device = fleet.Devices[i];
                ct.ThrowIfCancellationRequested();
                if (o.MessagesPerDevice is { } limit && device.Sequence - already[i] >= limit) continue;
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
                k++;
                if (!await PublishAsync(run, message, o.Qos, clock, o.Duration, ct).ConfigureAwait(false)) return;
            }
            if (!any) return;
        }
    }

    /// <summary>Publishes <paramref name="message"/> with a slot already taken, sending it again when
    /// the connection dropped meanwhile; false when <paramref name="until"/> passed while waiting for
    /// the connection.</summary>
    private static async Task<bool> PublishAsync(Run run, PublishedMessage message, int qos, Stopwatch? clock, TimeSpan? until, CancellationToken ct)
    {
        var publisher = run.Publisher;
        int domain = run.DomainIndex[message.Domain];
        while (true)
        {
            if (publisher.Publish(message.Topic, message.Payload, qos, domain, out var error, out bool disconnected))
            {
                run.ByDomain[domain]++;
                run.Report.ByFormat[message.Format]++;
                run.Report.ByDevice[message.Device]++;
                if (Volatile.Read(ref run.Backfilling)) Interlocked.Increment(ref run.Backfilled);
                run.OnPublished?.Invoke(message);
                return true;
            }
            if (disconnected)
            {
                // The connection dropped between the check before and the publish: send the same
                // message again once it is back.
                await Task.Delay(20, ct).ConfigureAwait(false);
                if (!await publisher.WaitConnectedAsync(clock ?? Stopwatch.StartNew(), until, ct).ConfigureAwait(false)) return false;
                await publisher.AcquireAsync(ct).ConfigureAwait(false);
                continue;
            }
            long failures = run.CountFailure();
            if (failures % 1000 == 1) run.Log($"publish failed ({failures} so far): {error}");
            return true;
        }
    }

    private static void WriteFile(string path, string text)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text);
    }
}
