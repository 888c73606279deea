using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;

namespace CityGateway.Core;

/// <summary>
/// Failed authentications per client address: at most <c>perMinute</c> in a fixed one-minute window
/// that starts at an address's first failure. Beyond it the address is throttled (the caller answers
/// 429 without checking the key) until the window ends. Only failures are counted, so a client that
/// authenticates never gets a limiter here, and nobody can exhaust a partner's budget by presenting
/// its key id with a wrong secret.
/// </summary>
/// <remarks>
/// <para>An IPv6 client is counted by its /64 prefix (one subscriber's network), an IPv4 client (or
/// IPv4-mapped IPv6) by its address.</para>
/// <para>Memory is bounded: at most <see cref="MaxAddresses"/> addresses are tracked; limiters whose
/// window has passed are swept when the table is full. Failures from addresses beyond that share one
/// overflow limiter, so a flood from more addresses than that is throttled together rather than
/// growing the table; while it lasts, a new address with a wrong key is throttled sooner.</para>
/// <para>Limiters do not replenish by timer (no timer per address): a window is replenished when the
/// address is next seen after it ended.</para>
/// </remarks>
public sealed class AuthFailureThrottle : IDisposable
{
    public const int MaxAddresses = 10_000;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan SweepEvery = TimeSpan.FromSeconds(1);

    private readonly int _perMinute;
    private readonly int _capacity;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly Dictionary<string, FixedWindowRateLimiter> _byAddress = new(StringComparer.Ordinal);
    private readonly FixedWindowRateLimiter _overflow;
    private long _lastSweep;

    public AuthFailureThrottle(int perMinute, int capacity = MaxAddresses, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perMinute, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _perMinute = perMinute;
        _capacity = capacity;
        _time = time ?? TimeProvider.System;
        _overflow = NewLimiter();
    }

    public int PerMinute => _perMinute;

    /// <summary>How many addresses are tracked now (at most the capacity).</summary>
    public int Tracked
    {
        get { lock (_lock) return _byAddress.Count; }
    }

    /// <summary>When the address has used up its failures: how long until it may try again; else null. Counts nothing.</summary>
    public TimeSpan? Throttled(IPAddress? address)
    {
        var key = PartitionOf(address);
        lock (_lock)
        {
            FixedWindowRateLimiter? limiter;
            if (!_byAddress.TryGetValue(key, out limiter))
            {
                // Not tracked: only throttled when the table is full and the overflow is used up.
                if (_byAddress.Count < _capacity) return null;
                limiter = _overflow;
            }
            limiter.TryReplenish();
            using var lease = limiter.AttemptAcquire(0);
            if (lease.IsAcquired) return null;
            return lease.TryGetMetadata(MetadataName.RetryAfter, out var retry) ? retry : Window;
        }
    }

    /// <summary>Counts one failed authentication of the address.</summary>
    public void Failed(IPAddress? address)
    {
        var key = PartitionOf(address);
        lock (_lock)
        {
            if (!_byAddress.TryGetValue(key, out var limiter))
            {
                if (_byAddress.Count >= _capacity) SweepIdle();
                if (_byAddress.Count < _capacity) _byAddress[key] = limiter = NewLimiter();
                else limiter = _overflow;
            }
            limiter.TryReplenish();
            using var lease = limiter.AttemptAcquire(1);
        }
    }

    /// <summary>The partition of an address: IPv4 as is, IPv6 by its /64 prefix.</summary>
    public static string PartitionOf(IPAddress? address)
    {
        if (address is null) return "unknown";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    private FixedWindowRateLimiter NewLimiter() => new(new FixedWindowRateLimiterOptions
    {
        PermitLimit = _perMinute,
        Window = Window,
        QueueLimit = 0,
        AutoReplenishment = false,
    });

    /// <summary>Drops limiters whose window has passed (at most once a second: a full table under attack is not scanned per request).</summary>
    private void SweepIdle()
    {
        long now = _time.GetTimestamp();
        if (_lastSweep != 0 && _time.GetElapsedTime(_lastSweep, now) < SweepEvery) return;
        _lastSweep = now;
        var idle = new List<string>();
        foreach (var (key, limiter) in _byAddress)
        {
            limiter.TryReplenish();
            if (limiter.IdleDuration is not null) idle.Add(key);
        }
        foreach (var key in idle)
        {
            _byAddress.Remove(key, out var limiter);
            limiter?.Dispose();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var limiter in _byAddress.Values) limiter.Dispose();
            _byAddress.Clear();
            _overflow.Dispose();
        }
    }
}
