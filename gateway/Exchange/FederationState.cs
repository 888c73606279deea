using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using CityGateway.Health;

namespace CityGateway.Exchange;

/// <summary>
/// Each partner's feed as the federation client last saw it, for /readyz, and its counts as
/// instruments of the gateway's meter: <c>gateway.exchange.federation.pulls</c> (partner, outcome
/// ok|failed), <c>gateway.exchange.federation.refused</c> (partner, reason) and
/// <c>gateway.exchange.federation.accepted</c> (partner: releases taken). Only the federation
/// client changes it, through methods that say what happened.
/// </summary>
/// <remarks>One immutable snapshot per partner swapped whole, as in InfluxState.</remarks>
public sealed class FederationState
{
    /// <summary><paramref name="Ok"/> is false after a pull that failed or refused something, until a pull succeeds.</summary>
    public sealed record Snapshot(string Partner, bool Ok, string Detail, string? LastError, DateTimeOffset? LastErrorAt,
        DateTimeOffset? LastSuccessAt, long LastSequence);

    private readonly ConcurrentDictionary<string, Snapshot> _partners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Partner, string Reason), long> _refused = new();
    private readonly ConcurrentDictionary<string, long> _accepted = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Partner, bool Ok), long> _pulls = new();
    private readonly TimeProvider _time;
    private readonly Counter<long> _refusedCounter, _pullCounter, _acceptedCounter;

    public FederationState(GatewayMetrics metrics, TimeProvider time)
    {
        _time = time;
        _refusedCounter = metrics.Meter.CreateCounter<long>("gateway.exchange.federation.refused", "{answer}",
            "Partner answers the federation client refused, by partner and reason");
        _pullCounter = metrics.Meter.CreateCounter<long>("gateway.exchange.federation.pulls", "{pull}",
            "Polls of a partner's feed, by partner and outcome (ok, failed)");
        _acceptedCounter = metrics.Meter.CreateCounter<long>("gateway.exchange.federation.accepted", "{release}",
            "Partner releases verified and written to measurement partner");
    }

    public IReadOnlyCollection<Snapshot> Partners => _partners.Values.OrderBy(p => p.Partner, StringComparer.Ordinal).ToArray();

    public Snapshot? Of(string partner) => _partners.GetValueOrDefault(partner);

    /// <summary>Refusals of one reason from one partner since start.</summary>
    public long RefusedCount(string partner, string reason) => _refused.GetValueOrDefault((partner, reason));

    public long RefusedCount(string partner) => _refused.Where(r => r.Key.Partner == partner).Sum(r => r.Value);

    public long AcceptedCount(string partner) => _accepted.GetValueOrDefault(partner);

    public long PullCount(string partner, bool ok) => _pulls.GetValueOrDefault((partner, ok));

    public long TotalAccepted => _accepted.Values.Sum();

    public long TotalRefused => _refused.Values.Sum();

    public void Started(string partner, long lastSequence) =>
        _partners.TryAdd(partner, new Snapshot(partner, true, "not polled yet", null, null, null, lastSequence));

    public void Accepted(string partner, long sequence)
    {
        _accepted.AddOrUpdate(partner, 1, (_, n) => n + 1);
        _acceptedCounter.Add(1, new KeyValuePair<string, object?>("partner", partner));
        Update(partner, s => s with { LastSequence = sequence });
    }

    /// <summary>An answer refused (counted by reason); the poll that refused it counts as failed.</summary>
    public void Refused(string partner, string reason)
    {
        _refused.AddOrUpdate((partner, reason), 1, (_, n) => n + 1);
        _refusedCounter.Add(1, new TagList { { "partner", partner }, { "reason", reason } });
    }

    public void PollSucceeded(string partner, string detail)
    {
        Count(partner, true);
        Update(partner, s => s with { Ok = true, Detail = detail, LastSuccessAt = _time.GetUtcNow() });
    }

    public void PollFailed(string partner, string error)
    {
        Count(partner, false);
        Update(partner, s => s with { Ok = false, Detail = error, LastError = error, LastErrorAt = _time.GetUtcNow() });
    }

    private void Count(string partner, bool ok)
    {
        _pulls.AddOrUpdate((partner, ok), 1, (_, n) => n + 1);
        _pullCounter.Add(1, new TagList { { "partner", partner }, { "outcome", ok ? "ok" : "failed" } });
    }

    private void Update(string partner, Func<Snapshot, Snapshot> change) =>
        _partners.AddOrUpdate(partner, p => change(new Snapshot(p, true, "", null, null, null, 0)), (_, s) => change(s));
}
