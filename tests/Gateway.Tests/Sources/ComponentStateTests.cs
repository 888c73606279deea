using CityGateway.Sources.Mqtt;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Sources;

/// <summary>The broker and InfluxDB states that /readyz, the instruments and the gateway measurement read.</summary>
public class ComponentStateTests
{
    [Fact]
    public void Influx_unauthorised_lasts_through_failed_pings_and_ends_when_InfluxDB_answers()
    {
        var influx = new InfluxState();
        Assert.Equal(new InfluxState.Snapshot(false, false, "not checked yet", false), influx.Current);

        Assert.True(influx.Unauthorised("HTTP 401: unauthorized access"));
        Assert.False(influx.Unreachable("connection refused"));
        Assert.Equal(new InfluxState.Snapshot(false, true, "connection refused", true), influx.Current);

        Assert.True(influx.Reachable("writes accepted"));
        Assert.Equal(new InfluxState.Snapshot(true, false, "writes accepted", true), influx.Current);
        Assert.False(influx.Reachable("writes accepted"));
        Assert.True(influx.Unreachable("timeout"));
    }

    [Fact]
    public void Broker_state_keeps_flag_detail_and_subscriptions_of_one_moment_together()
    {
        var broker = new BrokerState();
        broker.Connected("connected to b:1883 (MQTT 5)", [("a/#", 1), ("b/#", 0)]);
        var connected = broker.Current;
        broker.SubscriptionAnswered(1, s => s with { State = "refused", Reason = "Not authorized (code 135)" });
        broker.SubscriptionAnswered(5, s => s with { State = "granted" });
        broker.Disconnected("connection to b:1883 lost: gone; reconnecting");

        // A snapshot read earlier is not changed by later events.
        Assert.True(connected.Connected);
        Assert.Equal("connected to b:1883 (MQTT 5)", connected.Detail);
        Assert.All(connected.Subscriptions, s => Assert.Equal("pending", s.State));

        var now = broker.Current;
        Assert.False(now.Connected);
        Assert.Equal("connection to b:1883 lost: gone; reconnecting", now.Detail);
        Assert.Equal(["pending", "refused"], now.Subscriptions.Select(s => s.State));
        broker.Disconnected();
        Assert.Equal(now.Detail, broker.Detail);
    }
}
