namespace CityGateway.Exchange;

/// <summary>
/// How the release job's last run ended, for the exchange health check: a failed run (InfluxDB
/// unreachable, a fault of the job itself) shows the exchange Degraded with the error until a run
/// succeeds. One immutable snapshot, swapped whole.
/// </summary>
public sealed class ReleaseJobState(TimeProvider time)
{
    public sealed record Snapshot(bool Ok, string? LastError, DateTimeOffset? LastErrorAt, DateTimeOffset? LastSuccessAt);

    private volatile Snapshot _current = new(true, null, null, null);

    public Snapshot Current => _current;

    public void Succeeded() => _current = _current with { Ok = true, LastSuccessAt = time.GetUtcNow() };

    public void Failed(string error) => _current = _current with { Ok = false, LastError = error, LastErrorAt = time.GetUtcNow() };
}
