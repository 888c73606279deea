using CityGateway.Quarantine;
using CityGateway.Sources.Mqtt;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace CityGateway.Health;

/// <summary>
/// Liveness and readiness. /healthz answers on both listeners. /readyz on the operator listener is
/// every component check with its details, the gateway's counts and its memory; on the partner
/// listener it is the readiness alone (for a load balancer), without details.
/// </summary>
public static class HealthEndpoints
{
    public static void AddHealthChecks(IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<BrokerHealthCheck>(BrokerHealthCheck.Name, tags: [HealthTags.Ready, HealthTags.Source])
            .AddCheck<SerialHealthCheck>(SerialHealthCheck.Name, tags: [HealthTags.Ready, HealthTags.Source])
            .AddCheck<InfluxHealthCheck>(InfluxHealthCheck.Name, tags: [HealthTags.Ready, HealthTags.Storage])
            .AddCheck<JournalHealthCheck>(JournalHealthCheck.Name, tags: [HealthTags.Ready, HealthTags.Storage])
            .AddCheck<ExchangeHealthCheck>(ExchangeHealthCheck.Name, tags: [HealthTags.Exchange]);
    }

    public static void Map(WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Json(new { status = "alive" })).OnEveryListener();
        app.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = c => c.Tags.Contains(HealthTags.Ready),
            ResponseWriter = (http, report) => http.Response.WriteAsJsonAsync(new { ready = report.Status != HealthStatus.Unhealthy }),
        });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { ResponseWriter = WriteDetailsAsync }).OnOperatorListener();
    }

    /// <summary>The operator's /readyz: the components' sections are their checks' data.</summary>
    private static Task WriteDetailsAsync(HttpContext http, HealthReport report)
    {
        var services = http.RequestServices;
        var metrics = services.GetRequiredService<GatewayMetrics>();
        var mqtt = services.GetRequiredService<IOptions<MqttConnectionOptions>>().Value;
        var exchange = services.GetRequiredService<IOptions<Exchange.ExchangeOptions>>().Value;
        IReadOnlyDictionary<string, object>? Data(string name) => report.Entries.TryGetValue(name, out var e) ? e.Data : null;
        // Readiness is decided by the checks tagged "ready"; the others only inform.
        bool ready = report.Entries.All(e => e.Value.Status != HealthStatus.Unhealthy || !e.Value.Tags.Contains(HealthTags.Ready));
        var body = new
        {
            ready,
            instance = services.GetRequiredService<SelfMetricsService>().Instance,
            broker = mqtt.Enabled ? Data(BrokerHealthCheck.Name) : null,
            serial = Data(SerialHealthCheck.Name) is { } serial && serial.TryGetValue("ports", out var ports) ? ports : Array.Empty<object>(),
            influx = Data(InfluxHealthCheck.Name),
            journal = Data(JournalHealthCheck.Name),
            exchange = exchange.Enabled || exchange.Partners.Count > 0 ? Data(ExchangeHealthCheck.Name) : null,
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString(),
                description = e.Value.Description,
                tags = e.Value.Tags,
                durationMs = e.Value.Duration.TotalMilliseconds,
            }),
            received = metrics.Received,
            emptyFrames = metrics.EmptyFrames,
            pointsWritten = metrics.PointsWritten,
            batches = metrics.Batches,
            quarantined = services.GetRequiredService<QuarantineStore>().Total,
            queueDepth = metrics.QueueDepth(),
            process = ProcessMemory(),
        };
        http.Response.StatusCode = ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        return http.Response.WriteAsJsonAsync(body);
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
