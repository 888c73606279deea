using CityGateway.Exchange;
using CityGateway.Journal;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace CityGateway.Health;

// One health check per component. Each reads the state its component already keeps (BrokerState,
// InfluxState, SerialStatus, the journal's stats) and returns it as the check's data: /readyz is those data, as
// it showed them before the checks existed. Checks tagged "ready" decide readiness.

public static class HealthTags
{
    /// <summary>The check decides readiness (/readyz 503 while it is unhealthy).</summary>
    public const string Ready = "ready";
    public const string Source = "source";
    public const string Storage = "storage";
    public const string Exchange = "exchange";
}

public sealed class BrokerHealthCheck(BrokerState broker, IOptions<MqttConnectionOptions> options) : IHealthCheck
{
    public const string Name = "broker";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var mqtt = options.Value;
        if (!mqtt.Enabled) return Task.FromResult(HealthCheckResult.Healthy("MQTT is off (Gateway:Mqtt:Enabled=false)"));
        // One snapshot: the flag, the detail and the subscriptions belong to one moment.
        var state = broker.Current;
        var subscriptions = state.Subscriptions;
        var data = new Dictionary<string, object>
        {
            ["connected"] = state.Connected,
            ["detail"] = state.Detail,
            ["clientId"] = mqtt.ClientId,
            ["implementation"] = string.IsNullOrEmpty(broker.Implementation) ? null! : broker.Implementation,
            ["sharedGroup"] = string.IsNullOrEmpty(mqtt.SharedGroup) ? null! : mqtt.SharedGroup,
            ["subscriptions"] = subscriptions.Select(s => new { filter = s.Filter, qos = s.Qos, state = s.State, grantedQos = s.GrantedQos, reason = s.Reason }).ToArray(),
        };
        // A refused subscription leaves the gateway connected but deaf to those topics.
        var refused = subscriptions.Where(s => s.Refused).Select(s => s.Filter).ToArray();
        var result = !state.Connected ? HealthCheckResult.Unhealthy(state.Detail, data: data)
            : refused.Length > 0 ? HealthCheckResult.Unhealthy("subscription refused: " + string.Join(", ", refused), data: data)
            : HealthCheckResult.Healthy(state.Detail, data);
        return Task.FromResult(result);
    }
}

public sealed class InfluxHealthCheck(InfluxState influx) : IHealthCheck
{
    public const string Name = "influx";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = influx.Current;
        var data = new Dictionary<string, object>
        {
            ["reachable"] = state.Reachable,
            ["unauthorised"] = state.Unauthorised,
            ["detail"] = state.Detail,
        };
        var result = state.Unauthorised ? HealthCheckResult.Unhealthy("InfluxDB refuses the credentials: " + state.Detail, data: data)
            : !state.Reachable ? HealthCheckResult.Unhealthy(state.Detail, data: data)
            : HealthCheckResult.Healthy(state.Detail, data);
        return Task.FromResult(result);
    }
}

public sealed class JournalHealthCheck(IFrameLog log) : IHealthCheck
{
    public const string Name = "journal";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var stats = log.Stats;
        var data = new Dictionary<string, object>
        {
            ["durable"] = stats.Durable,
            ["bytes"] = stats.Bytes,
            ["maxBytes"] = stats.MaxBytes,
            ["segments"] = stats.Segments,
            ["pending"] = stats.Pending,
            ["full"] = stats.Full,
        };
        return Task.FromResult(stats.Full
            ? HealthCheckResult.Unhealthy($"at its size bound ({stats.Bytes} of {stats.MaxBytes} bytes): sources take no frames", data: data)
            : HealthCheckResult.Healthy($"{stats.Pending} frames pending", data));
    }
}

public sealed class SerialHealthCheck(SerialStatus serial) : IHealthCheck
{
    public const string Name = "serial";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var ports = serial.Ports.Values.OrderBy(p => p.Name).ToArray();
        var data = new Dictionary<string, object>
        {
            ["ports"] = ports.Select(p => new
            {
                name = p.Name, path = p.Path, open = p.Open, state = p.State,
                lines = Interlocked.Read(ref p.Lines), bytes = Interlocked.Read(ref p.Bytes),
                overlong = Interlocked.Read(ref p.Overlong), reopens = p.Reopens,
            }).ToArray(),
        };
        var closed = ports.Where(p => !p.Open).Select(p => $"{p.Name}: {p.State}").ToArray();
        return Task.FromResult(closed.Length > 0
            ? HealthCheckResult.Unhealthy("closed: " + string.Join("; ", closed), data: data)
            : HealthCheckResult.Healthy(ports.Length == 0 ? "no serial ports configured" : $"{ports.Length} open", data));
    }
}

/// <summary>
/// The exchange role of this instance and, where it pulls partners' feeds, each partner's last
/// poll: Degraded (never Unhealthy) while a partner's answers are refused or it cannot be reached,
/// with the partner and the last error. It does not decide readiness: a partner never stops ingestion.
/// </summary>
public sealed class ExchangeHealthCheck(IOptions<ExchangeOptions> options, IServiceProvider services) : IHealthCheck
{
    public const string Name = "exchange";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        if (!o.Enabled && o.Partners.Count == 0) return Task.FromResult(HealthCheckResult.Healthy("not configured"));
        var data = new Dictionary<string, object> { ["role"] = o.Publisher ? "publisher" : "ingest-only" };
        var problems = new List<string>();
        if (services.GetService<ReleaseJobState>()?.Current is { } releases)
        {
            data["releaseJob"] = new { ok = releases.Ok, lastError = releases.LastError, lastErrorAt = releases.LastErrorAt, lastSuccessAt = releases.LastSuccessAt };
            if (!releases.Ok) problems.Add("release job: " + releases.LastError);
        }
        // Only a publisher with partners runs the federation client.
        if (services.GetService<FederationClient>() is { } federation && services.GetService<FederationState>() is { } state)
        {
            data["federationAccepted"] = federation.Accepted;
            data["federationRejected"] = federation.Rejected;
            var partners = state.Partners;
            data["partners"] = partners.Select(p => new
            {
                partner = p.Partner, ok = p.Ok, detail = p.Detail, lastError = p.LastError, lastErrorAt = p.LastErrorAt,
                lastSuccessAt = p.LastSuccessAt, lastSequence = p.LastSequence, refused = state.RefusedCount(p.Partner),
            }).ToArray();
            problems.AddRange(partners.Where(p => !p.Ok).Select(p => $"partner {p.Partner}: {p.LastError}"));
        }
        return Task.FromResult(problems.Count > 0
            ? HealthCheckResult.Degraded(string.Join("; ", problems), data: data)
            : HealthCheckResult.Healthy((string)data["role"], data));
    }
}
