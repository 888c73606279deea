using CityGateway.Journal;
using CityGateway.Quarantine;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using Microsoft.Extensions.Options;

namespace CityGateway.Health;

public static class HealthEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Json(new { status = "alive" }));
        app.MapGet("/readyz", (GatewayHealth health, GatewayMetrics metrics, QuarantineStore quarantine, IFrameLog log,
            SerialStatus serial, IOptions<MqttConnectionOptions> mqtt, SelfMetricsService self, IOptions<Exchange.ExchangeOptions> exchange) =>
        {
            bool influxOk = health.InfluxReachable && !health.InfluxUnauthorised;
            var journal = log.Stats;
            var subscriptions = health.Subscriptions;
            // A refused subscription leaves the gateway connected but deaf to those topics.
            bool brokerOk = !mqtt.Value.Enabled || (health.BrokerConnected && !subscriptions.Any(s => s.Refused));
            bool serialOk = serial.Ports.Values.All(p => p.Open);
            bool ready = brokerOk && influxOk && !journal.Full && serialOk;
            var body = new
            {
                ready,
                instance = self.Instance,
                broker = mqtt.Value.Enabled
                    ? new
                    {
                        connected = health.BrokerConnected,
                        detail = health.BrokerDetail,
                        clientId = mqtt.Value.ClientId,
                        sharedGroup = string.IsNullOrEmpty(mqtt.Value.SharedGroup) ? null : mqtt.Value.SharedGroup,
                        subscriptions = subscriptions.Select(s => new { filter = s.Filter, qos = s.Qos, state = s.State, grantedQos = s.GrantedQos, reason = s.Reason }),
                    }
                    : null,
                serial = serial.Ports.Values.OrderBy(p => p.Name).Select(p => new
                {
                    name = p.Name, path = p.Path, open = p.Open, state = p.State,
                    lines = Interlocked.Read(ref p.Lines), bytes = Interlocked.Read(ref p.Bytes),
                    overlong = Interlocked.Read(ref p.Overlong), reopens = p.Reopens,
                }),
                influx = new
                {
                    reachable = health.InfluxReachable,
                    unauthorised = health.InfluxUnauthorised,
                    detail = health.InfluxDetail,
                },
                journal = new
                {
                    durable = journal.Durable,
                    bytes = journal.Bytes,
                    maxBytes = journal.MaxBytes,
                    segments = journal.Segments,
                    pending = journal.Pending,
                    full = journal.Full,
                },
                exchange = exchange.Value.Enabled || exchange.Value.Partners.Count > 0
                    ? new { role = exchange.Value.Publisher ? "publisher" : "ingest-only" }
                    : null,
                received = metrics.Received,
                emptyFrames = metrics.EmptyFrames,
                pointsWritten = metrics.PointsWritten,
                batches = metrics.Batches,
                quarantined = quarantine.Total,
                queueDepth = metrics.QueueDepth(),
                process = ProcessMemory(),
            };
            return Results.Json(body, statusCode: ready ? 200 : 503);
        });
    }

    /// <summary>Resident memory and the managed heap, so memory can be watched without extra tools.</summary>
    private static object ProcessMemory()
    {
        var gc = GC.GetGCMemoryInfo();
        return new
        {
            rssBytes = Environment.WorkingSet,
            gcHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
            gcHeapAfterLastGcBytes = gc.HeapSizeBytes,
            gcCommittedBytes = gc.TotalCommittedBytes,
            gcMode = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation",
            gcCollections = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) },
            gcPauseMs = (long)GC.GetTotalPauseDuration().TotalMilliseconds,
        };
    }
}
