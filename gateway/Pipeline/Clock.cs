namespace CityGateway.Pipeline;

public static class UnixTime
{
    private static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;

    public static long NowNs() => ToNs(DateTimeOffset.UtcNow);

    public static long ToNs(DateTimeOffset t) => (t.UtcTicks - EpochTicks) * 100;

    public static DateTimeOffset FromNs(long ns) => new(EpochTicks + ns / 100, TimeSpan.Zero);
}
