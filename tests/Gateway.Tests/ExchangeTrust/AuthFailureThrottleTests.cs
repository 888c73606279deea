using System.Net;
using CityGateway.Core;

namespace CityGateway.Tests.ExchangeTrust;

/// <summary>The per-address throttle of failed authentications: counts failures only, bounded memory.</summary>
public sealed class AuthFailureThrottleTests
{
    [Fact]
    public void An_address_is_throttled_after_its_allowed_failures_and_only_that_address()
    {
        using var throttle = new AuthFailureThrottle(perMinute: 3);
        var a = IPAddress.Parse("192.0.2.1");
        var b = IPAddress.Parse("192.0.2.2");
        for (int i = 0; i < 3; i++)
        {
            Assert.Null(throttle.Throttled(a));
            throttle.Failed(a);
        }
        Assert.True(throttle.Throttled(a) > TimeSpan.Zero);
        Assert.Null(throttle.Throttled(b));
        // Asking does not count: an address that only asks is never tracked.
        for (int i = 0; i < 100; i++) Assert.Null(throttle.Throttled(IPAddress.Parse("192.0.2.3")));
        Assert.Equal(1, throttle.Tracked);
    }

    [Fact]
    public void The_addresses_tracked_are_bounded_and_addresses_beyond_share_one_overflow_budget()
    {
        using var throttle = new AuthFailureThrottle(perMinute: 2, capacity: 4);
        for (int i = 0; i < 1000; i++) throttle.Failed(IPAddress.Parse($"198.51.{i / 250}.{i % 250}"));
        Assert.Equal(4, throttle.Tracked);
        // The overflow budget (2) is used up by the flood: a new address is throttled together with it.
        Assert.NotNull(throttle.Throttled(IPAddress.Parse("203.0.113.9")));
        // A tracked address keeps its own count.
        Assert.Null(throttle.Throttled(IPAddress.Parse("198.51.0.0")));
    }

    [Fact]
    public void IPv6_clients_are_counted_by_their_64_prefix_and_IPv4_mapped_as_IPv4()
    {
        Assert.Equal(AuthFailureThrottle.PartitionOf(IPAddress.Parse("2001:db8:1:2:aaaa::1")), AuthFailureThrottle.PartitionOf(IPAddress.Parse("2001:db8:1:2:bbbb::7")));
        Assert.NotEqual(AuthFailureThrottle.PartitionOf(IPAddress.Parse("2001:db8:1:2::1")), AuthFailureThrottle.PartitionOf(IPAddress.Parse("2001:db8:1:3::1")));
        Assert.Equal("192.0.2.7", AuthFailureThrottle.PartitionOf(IPAddress.Parse("::ffff:192.0.2.7")));
        using var throttle = new AuthFailureThrottle(perMinute: 1);
        throttle.Failed(IPAddress.Parse("2001:db8:1:2::1"));
        Assert.NotNull(throttle.Throttled(IPAddress.Parse("2001:db8:1:2::99")));
    }
}
