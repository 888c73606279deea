using System.Diagnostics.Metrics;
using CityGateway.Journal;
using CityGateway.Quarantine;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using CityGateway.Storage.Influx;

namespace CityGateway.Health;

/// <summary>
/// Observable instruments over the state other stages keep (journal, broker and InfluxDB
/// connections, serial ports, quarantine counts by reason), on the gateway's meter. They read the
/// same objects /readyz and the "gateway" measurement read, when an exporter collects.
/// </summary>
/// <remarks>
/// A hosted service only so that the host creates it at start: resolving the journal earlier (at
/// build time) would take its lock before the journal-in-use check can report it.
/// </remarks>
public sealed class GatewayStateInstruments : IHostedService
{
    public GatewayStateInstruments(GatewayMetrics metrics, BrokerState broker, InfluxState influx, IFrameLog log, SerialStatus serial, QuarantineStore quarantine)
    {
        var meter = metrics.Meter;
        meter.CreateObservableGauge("gateway.journal.size", () => log.Stats.Bytes, "By",
            "Bytes the journal holds on disk (or in memory without a journal)");
        meter.CreateObservableGauge("gateway.journal.limit", () => log.Stats.MaxBytes, "By",
            "The journal's size bound (Gateway:Journal:MaxBytes); at it the sources stop taking frames");
        meter.CreateObservableGauge("gateway.journal.pending", () => log.Stats.Pending, "{frame}",
            "Frames in the journal not yet committed (stored or quarantined)");
        meter.CreateObservableGauge("gateway.journal.full", () => log.Stats.Full ? 1 : 0, "1",
            "1 while the journal is at its size bound");
        meter.CreateObservableGauge("gateway.broker.connected", () => broker.IsConnected ? 1 : 0, "1",
            "1 while the MQTT broker connection is up");
        meter.CreateObservableGauge("gateway.influx.reachable", () => influx.IsReachable ? 1 : 0, "1",
            "1 while InfluxDB answered the last request");
        meter.CreateObservableGauge("gateway.influx.unauthorised", () => influx.IsUnauthorised ? 1 : 0, "1",
            "1 while InfluxDB refuses the gateway's credentials and writing is stopped");
        meter.CreateObservableGauge("gateway.serial.port.open", () => PerPort(serial, p => p.Open ? 1 : 0), "1",
            "1 while the serial port is open, by port");
        meter.CreateObservableCounter("gateway.serial.lines", () => PerPort(serial, p => Interlocked.Read(ref p.Lines)), "{line}",
            "Lines read from the serial port, by port");
        meter.CreateObservableCounter("gateway.serial.received.size", () => PerPort(serial, p => Interlocked.Read(ref p.Bytes)), "By",
            "Bytes read from the serial port, by port");
        meter.CreateObservableCounter("gateway.serial.overlong", () => PerPort(serial, p => Interlocked.Read(ref p.Overlong)), "{line}",
            "Lines longer than the port's MaxLineBytes (quarantined as line_too_long), by port");
        meter.CreateObservableCounter("gateway.serial.reopens", () => PerPort(serial, p => p.Reopens), "{open}",
            "Times the serial port was opened again after it closed, by port");
        meter.CreateObservableCounter("gateway.quarantined", () => ByReason(quarantine), "{entry}",
            "Frames and points quarantined, by reason");
    }

    private static IEnumerable<Measurement<long>> PerPort(SerialStatus serial, Func<SerialPortStatus, long> value)
    {
        foreach (var port in serial.Ports.Values)
            yield return new Measurement<long>(value(port), new KeyValuePair<string, object?>("port", port.Name));
    }

    private static IEnumerable<Measurement<long>> ByReason(QuarantineStore quarantine)
    {
        foreach (var (reason, count) in quarantine.CountsByReason)
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("reason", reason));
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
