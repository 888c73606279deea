using CityGateway.Journal;
using CityGateway.Quarantine;

namespace CityGateway.Health;

public static class HealthEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Json(new { status = "alive" }));
        app.MapGet("/readyz", (GatewayHealth health, GatewayMetrics metrics, QuarantineStore quarantine, IFrameLog log) =>
        {
            bool influxOk = health.InfluxReachable && !health.InfluxUnauthorised;
            var journal = log.Stats;
            bool ready = health.BrokerConnected && influxOk && !journal.Full;
            var body = new
            {
                ready,
                broker = new { connected = health.BrokerConnected, detail = health.BrokerDetail },
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
                received = metrics.Received,
                emptyFrames = metrics.EmptyFrames,
                pointsWritten = metrics.PointsWritten,
                quarantined = quarantine.Total,
                queueDepth = metrics.QueueDepth(),
            };
            return Results.Json(body, statusCode: ready ? 200 : 503);
        });
    }
}
