namespace CityGateway.Storage.Influx;

/// <summary>
/// InfluxDB as the writer last saw it (writes and pings), for /readyz, the instruments and the
/// "gateway" measurement. Only the writer changes it, through methods that say what happened.
/// </summary>
/// <remarks>One immutable snapshot swapped whole: a reader of <see cref="Current"/> never sees the
/// detail of one state with the flags of another.</remarks>
public sealed class InfluxState
{
    /// <summary><paramref name="Checked"/> is false until the first write or ping answered.
    /// <paramref name="Unauthorised"/>: InfluxDB refused our credentials (401/403); writing is
    /// stopped until it accepts them.</summary>
    public sealed record Snapshot(bool Reachable, bool Unauthorised, string Detail, bool Checked);

    private readonly object _lock = new();
    private volatile Snapshot _current = new(false, false, "not checked yet", false);

    public Snapshot Current => _current;
    public bool IsReachable => _current.Reachable;
    public bool IsUnauthorised => _current.Unauthorised;
    public string Detail => _current.Detail;

    /// <summary>InfluxDB answered (a write accepted or rejected on its merits, or a ping); this also
    /// ends an unauthorised state. Returns whether that changed the reachability.</summary>
    public bool Reachable(string detail) => Set(new Snapshot(true, false, detail, true));

    /// <summary>InfluxDB did not answer, or answered with a retryable failure. An unauthorised state
    /// stays until a write succeeds. Returns whether that changed the reachability (the first check
    /// counts as a change).</summary>
    public bool Unreachable(string detail)
    {
        lock (_lock)
        {
            var before = _current;
            _current = new Snapshot(false, before.Unauthorised, detail, true);
            return before.Reachable || !before.Checked;
        }
    }

    /// <summary>InfluxDB refused our credentials (401/403). Returns whether that changed the reachability.</summary>
    public bool Unauthorised(string detail)
    {
        lock (_lock)
        {
            var before = _current;
            _current = new Snapshot(false, true, detail, true);
            return before.Reachable || !before.Checked;
        }
    }

    private bool Set(Snapshot next)
    {
        lock (_lock)
        {
            var before = _current;
            _current = next;
            return before.Reachable != next.Reachable;
        }
    }
}
