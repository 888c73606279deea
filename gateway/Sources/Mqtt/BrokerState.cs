namespace CityGateway.Sources.Mqtt;

/// <summary>
/// The broker connection as the MQTT source last saw it, for /readyz, the instruments and the
/// "gateway" measurement. Only the source changes it, through methods that say what happened.
/// </summary>
/// <remarks>
/// One immutable snapshot swapped whole: a reader of <see cref="Current"/> never sees the detail of
/// one state with the flag of another. Writers take a lock because a subscription answer changes
/// one entry of the current snapshot.
/// </remarks>
public sealed class BrokerState
{
    /// <summary>The connection flag, what the source says about it, and the subscriptions of the
    /// current connection as the broker answered them.</summary>
    public sealed record Snapshot(bool Connected, string Detail, IReadOnlyList<SubscriptionStatus> Subscriptions);

    private readonly object _lock = new();
    private volatile Snapshot _current = new(false, "not connected yet", []);

    public Snapshot Current => _current;

    /// <summary>The MQTT client library and its version , once the source has started.</summary>
    public string Implementation { get; set; } = "";
    public bool IsConnected => _current.Connected;
    public string Detail => _current.Detail;
    public IReadOnlyList<SubscriptionStatus> Subscriptions => _current.Subscriptions;

    /// <summary>Connected; every subscription is pending until the broker answers it.</summary>
    public void Connected(string detail, IEnumerable<(string Filter, int Qos)> subscriptions)
    {
        var pending = subscriptions.Select(s => new SubscriptionStatus(s.Filter, s.Qos, "pending")).ToArray();
        lock (_lock) _current = new Snapshot(true, detail, pending);
    }

    /// <summary>Not connected (refused, unreachable, lost, paused, stopped); the subscriptions of the
    /// last connection stay visible.</summary>
    public void Disconnected(string detail)
    {
        lock (_lock) _current = _current with { Connected = false, Detail = detail };
    }

    /// <summary>Not connected, with no news worth replacing the detail already given.</summary>
    public void Disconnected()
    {
        lock (_lock) _current = _current with { Connected = false };
    }

    /// <summary>The broker answered the subscription at <paramref name="index"/>.</summary>
    public void SubscriptionAnswered(int index, Func<SubscriptionStatus, SubscriptionStatus> answer)
    {
        lock (_lock)
        {
            var subscriptions = _current.Subscriptions;
            if (index >= subscriptions.Count) return;
            var copy = subscriptions.ToArray();
            copy[index] = answer(copy[index]);
            _current = _current with { Subscriptions = copy };
        }
    }
}

/// <summary>One MQTT subscription: the filter as sent (shared form included), the QoS asked for, and
/// the broker's answer: <c>pending</c>, <c>granted</c> (with the QoS granted) or <c>refused</c> (with the reason).</summary>
public sealed record SubscriptionStatus(string Filter, int Qos, string State, int? GrantedQos = null, string? Reason = null)
{
    public bool Refused => State == "refused";
}
