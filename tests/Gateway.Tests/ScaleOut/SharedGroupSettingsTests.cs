using CityGateway.Health;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;

namespace CityGateway.Tests.ScaleOut;

public sealed class SharedGroupSettingsTests
{
    private static TopicRoute Route(string filter, int qos = 1, string source = "mqtt") => new() { Filter = filter, Format = "json", Qos = qos, Source = source };

    [Fact]
    public void Without_a_group_each_route_filter_is_subscribed_as_it_is()
    {
        var subs = MqttSource.Subscriptions([Route("city/json/#"), Route("city/senml/#", 0), Route("city/json/#", 0)], "");
        Assert.Equal([("city/json/#", 1), ("city/senml/#", 0)], subs);
    }

    [Fact]
    public void With_a_group_each_route_filter_is_subscribed_in_its_shared_form_once_at_the_highest_qos()
    {
        var subs = MqttSource.Subscriptions(
            [Route("city/json/#", 0), Route("city/json/#", 1), Route("v3/+/devices/+/up"), Route("serial/water-quality", 0, "serial")], "ingest");
        Assert.Equal([("$share/ingest/city/json/#", 1), ("$share/ingest/v3/+/devices/+/up", 1)], subs);
    }

    [Fact]
    public void Instances_in_a_shared_group_are_named_by_their_client_id_unless_an_instance_id_is_set()
    {
        var mqtt = new MqttConnectionOptions { ClientId = "gw-2", SharedGroup = "ingest" };
        Assert.Equal("gw-2", SelfMetricsService.InstanceName(new SelfMetricsOptions(), mqtt));
        Assert.Equal("edge-7", SelfMetricsService.InstanceName(new SelfMetricsOptions { InstanceId = "edge-7" }, mqtt));
        Assert.Equal(Environment.MachineName, SelfMetricsService.InstanceName(new SelfMetricsOptions(), new MqttConnectionOptions { ClientId = "gw-2" }));
    }
}
