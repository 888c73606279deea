namespace CityGateway.Core;

/// <summary>Conversions between times and Unix epoch nanoseconds, InfluxDB's timestamps. Pure functions.</summary>
public static class UnixTime
{
    private static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;

    public static long ToNs(DateTimeOffset t) => (t.UtcTicks - EpochTicks) * 100;

    /// <summary>Unix nanoseconds in a long reach from 1677-09-21 to 2262-04-11; outside that range
    /// <see cref="ToNs"/> would wrap around, so device times are converted with this.</summary>
    public static bool TryToNs(DateTimeOffset t, out long ns)
    {
        long ticks = t.UtcTicks - EpochTicks;
        if (ticks > long.MaxValue / 100 || ticks < long.MinValue / 100)
        {
            ns = 0;
            return false;
        }
        ns = ticks * 100;
        return true;
    }

    public static DateTimeOffset FromNs(long ns) => new(EpochTicks + ns / 100, TimeSpan.Zero);
}

/// <summary>
/// The gateway's clock: one per process, injected, over a <see cref="TimeProvider"/> (the system's,
/// or a test's). Receive times come from here.
/// </summary>
public sealed class GatewayClock(TimeProvider time)
{
    private long _lastReceive;

    public long NowNs() => UnixTime.ToNs(time.GetUtcNow());

    /// <summary>
    /// Receive time for a new frame: the wall clock, but strictly increasing across all sources, so
    /// two frames of one device received within the clock's resolution never share a timestamp
    /// (which would merge them into one InfluxDB point).
    /// </summary>
    public long ReceiveNs()
    {
        long now = NowNs();
        while (true)
        {
            long last = Interlocked.Read(ref _lastReceive);
            long next = now > last ? now : last + 1;
            if (Interlocked.CompareExchange(ref _lastReceive, next, last) == last) return next;
        }
    }
}
