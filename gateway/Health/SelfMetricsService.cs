using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Quarantine;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Health;

public sealed class SelfMetricsOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Seconds between points in the "gateway" measurement.</summary>
    public int IntervalSeconds { get; set; } = 5;

    /// <summary>Tag "instance" on the gateway's own points; defaults to the host name, or with
    /// Gateway:Mqtt:SharedGroup set (several instances, possibly on one host) to the MQTT client id.</summary>
    public string? InstanceId { get; set; }
}

/// <summary>
/// Writes the gateway's own counters to the "gateway" measurement every few seconds: received,
/// written, quarantined (total and by reason, tag "reason"), quarantine entries removed by rotation, batch latency, queue depth and the
/// state of the broker and InfluxDB connections. Counters are cumulative since start.
/// </summary>
public sealed partial class SelfMetricsService(
    WriterQueues channels,
    IFrameLog log,
    Sources.Serial.SerialStatus serial,
    GatewayMetrics metrics,
    Sources.Mqtt.BrokerState broker,
    Storage.Influx.InfluxState influx,
    QuarantineStore quarantine,
    IOptions<SelfMetricsOptions> options,
    IOptions<Sources.Mqtt.MqttConnectionOptions> mqtt,
    GatewayClock clock,
    ILogger<SelfMetricsService> logger) : BackgroundService
{
    private long _lastQuarantined;

    public string Instance { get; } = InstanceName(options.Value, mqtt.Value);

    internal static string InstanceName(SelfMetricsOptions options, Sources.Mqtt.MqttConnectionOptions mqtt) =>
        options.InstanceId is { Length: > 0 } id ? id
        // Scaled-out instances often share a host; the client id is unique per instance by necessity.
        : mqtt.Enabled && !string.IsNullOrEmpty(mqtt.SharedGroup) ? mqtt.ClientId
        : Environment.MachineName;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.IntervalSeconds)));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                Emit();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return; // shutdown
        }
    }

    internal void Emit()
    {
        long now = clock.NowNs();
        var tags = new KeyValuePair<string, string>[] { new("instance", Instance) };
        var p = new Point("gateway", tags, now) { Origin = "self" };
        p.Fields.Add(PointField.Of("received", metrics.Received));
        p.Fields.Add(PointField.Of("received_bytes", metrics.ReceivedBytes));
        p.Fields.Add(PointField.Of("decoded", metrics.Decoded));
        p.Fields.Add(PointField.Of("empty_frames", metrics.EmptyFrames));
        p.Fields.Add(PointField.Of("points_written", metrics.PointsWritten));
        p.Fields.Add(PointField.Of("batches", metrics.Batches));
        p.Fields.Add(PointField.Of("write_failures", metrics.WriteFailures));
        p.Fields.Add(PointField.Of("batch_latency_ms", metrics.LastBatchLatencyMs));
        p.Fields.Add(PointField.Of("queue_depth", (long)metrics.QueueDepth()));
        p.Fields.Add(PointField.Of("quarantined", quarantine.Total));
        p.Fields.Add(PointField.Of("quarantine_rotated_away", quarantine.RemovedByRotation));
        p.Fields.Add(PointField.Of("broker_connected", broker.IsConnected));
        p.Fields.Add(PointField.Of("influx_reachable", influx.IsReachable));
        var journal = log.Stats;
        p.Fields.Add(PointField.Of("journal_bytes", journal.Bytes));
        p.Fields.Add(PointField.Of("journal_max_bytes", journal.MaxBytes));
        p.Fields.Add(PointField.Of("journal_pending", journal.Pending));
        p.Fields.Add(PointField.Of("journal_full", journal.Full));
        var batch = new List<Point> { p };
        foreach (var port in serial.Ports.Values)
        {
            var sp = new Point("gateway", [new("instance", Instance), new("port", port.Name)], now) { Origin = "self" };
            sp.Fields.Add(PointField.Of("serial_open", port.Open));
            sp.Fields.Add(PointField.Of("serial_lines", Interlocked.Read(ref port.Lines)));
            sp.Fields.Add(PointField.Of("serial_bytes", Interlocked.Read(ref port.Bytes)));
            sp.Fields.Add(PointField.Of("serial_overlong", Interlocked.Read(ref port.Overlong)));
            sp.Fields.Add(PointField.Of("serial_reopens", port.Reopens));
            batch.Add(sp);
        }
        foreach (var (reason, count) in quarantine.CountsByReason)
        {
            var r = new Point("gateway", [new("instance", Instance), new("reason", reason)], now) { Origin = "self" };
            r.Fields.Add(PointField.Of("quarantined", count));
            batch.Add(r);
        }
        foreach (var point in batch) channels.SelfMetrics.Writer.TryWrite(point);

        long q = quarantine.Total;
        if (q > _lastQuarantined) LogQuarantineSummary(q - _lastQuarantined, q, quarantine.FilePath);
        _lastQuarantined = q;
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "{New} new quarantine entries ({Total} since start); see {Path}")]
    private partial void LogQuarantineSummary(long @new, long total, string path);
}
