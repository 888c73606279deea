using CityGateway.Routing;

namespace CityGateway.Tests.Routing;

public class TopicsTests
{
    [Theory]
    [InlineData("city/traffic/north/tc-01", "city/traffic/north/tc-01")]
    [InlineData("city/+/north/tc-01", "city/traffic/north/tc-01")]
    [InlineData("city/+/+/+", "city/traffic/north/tc-01")]
    [InlineData("+/+/+/+", "city/traffic/north/tc-01")]
    [InlineData("city/#", "city/traffic/north/tc-01")]
    [InlineData("city/#", "city/traffic")]
    [InlineData("city/#", "city")]                        // "a/#" also matches the parent level
    [InlineData("city/traffic/#", "city/traffic")]
    [InlineData("#", "city/traffic/north/tc-01")]
    [InlineData("#", "city")]
    [InlineData("city/+/#", "city/traffic")]
    [InlineData("city/+", "city/")]                        // an empty level is a level
    [InlineData("+/traffic", "/traffic")]
    [InlineData("/city", "/city")]
    [InlineData("$SYS/#", "$SYS/broker/uptime")]           // $-topics match filters that name them
    [InlineData("$SYS/broker/+", "$SYS/broker/uptime")]
    [InlineData("$share/ingest/city/#", "city/traffic/north/tc-01")]
    [InlineData("$share/ingest/city/+/north/+", "city/traffic/north/tc-01")]
    [InlineData("$share/ingest/#", "city/traffic")]
    public void Matches(string filter, string topic)
    {
        Assert.True(Topics.Matches(filter, topic));
    }

    [Theory]
    [InlineData("city/traffic/north/tc-01", "city/traffic/north/tc-02")]
    [InlineData("city/traffic", "city/traffic/north")]
    [InlineData("city/traffic/north", "city/traffic")]
    [InlineData("city/+", "city")]                         // + needs a level
    [InlineData("city/+", "city/traffic/north")]
    [InlineData("city/+/north", "city/traffic/south")]
    [InlineData("City/#", "city/traffic")]                 // case-sensitive
    [InlineData("city/#", "cityx/traffic")]
    [InlineData("city/traffic/#", "city")]
    [InlineData("+/traffic", "traffic")]
    [InlineData("#", "$SYS/broker/uptime")]                // leading wildcards do not match $-topics
    [InlineData("+/broker/uptime", "$SYS/broker/uptime")]
    [InlineData("+/#", "$SYS/broker")]
    [InlineData("$share/ingest/#", "$SYS/broker/uptime")]  // nor do they behind a shared-subscription prefix
    [InlineData("$share/ingest/+/broker/uptime", "$SYS/broker/uptime")]
    [InlineData("$share/ingest/city/#", "other/traffic")]
    [InlineData("$share/ingest", "ingest")]                // no filter after the group
    [InlineData("$share/ingest", "$share/ingest")]
    public void Does_not_match(string filter, string topic)
    {
        Assert.False(Topics.Matches(filter, topic));
    }

    [Theory]
    [InlineData("city/traffic/north/tc-01")]
    [InlineData("city/+/+/+")]
    [InlineData("city/#")]
    [InlineData("#")]
    [InlineData("+")]
    [InlineData("+/+/#")]
    [InlineData("/city/")]
    [InlineData("$share/ingest/city/#")]
    [InlineData("application/+/device/+/event/up")]
    public void Valid_filters(string filter)
    {
        Assert.Null(Topics.ValidateFilter(filter));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("city/#/north", "'#'")]                     // # must be last
    [InlineData("city/traffic#", "'#'")]                    // # must be a whole level
    [InlineData("#/city", "'#'")]
    [InlineData("city/##", "'#'")]
    [InlineData("city/tr+/north", "'+'")]                   // + must be a whole level
    [InlineData("city/++", "'+'")]
    [InlineData("+city", "'+'")]
    public void Invalid_filters_say_why(string filter, string because)
    {
        var error = Topics.ValidateFilter(filter);
        Assert.NotNull(error);
        Assert.Contains(because, error);
    }

    [Theory]
    [InlineData("$share/ingest", "no topic filter")]
    [InlineData("$share/ingest/", "no topic filter")]
    [InlineData("$share//city/#", "group name is empty")]
    [InlineData("$share/+/city/#", "'+'")]
    [InlineData("$share/in#/city/#", "'#'")]
    [InlineData("$share/ingest/city/#/north", "'#'")]
    public void Invalid_shared_filters_say_why(string filter, string because)
    {
        var error = Topics.ValidateFilter(filter);
        Assert.NotNull(error);
        Assert.Contains(because, error);
    }

    [Theory]
    [InlineData("ingest")]
    [InlineData("city-gateways.v2")]
    [InlineData("g")]
    public void Valid_share_names(string group) => Assert.Null(Topics.ValidateShareName(group));

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a/b")]
    [InlineData("a+")]
    [InlineData("#")]
    [InlineData("a\tb")]
    public void Invalid_share_names(string group) => Assert.NotNull(Topics.ValidateShareName(group));

    [Fact]
    public void The_shared_form_and_the_route_filter_match_the_same_topics()
    {
        string[] filters = ["city/json/#", "city/+/north/+", "application/+/device/+/event/up", "#"];
        string[] topics = ["city/json/environment/env-1", "city/traffic/north/tc-01", "application/7/device/a1/event/up", "other", "$SYS/x"];
        foreach (var f in filters)
        {
            var shared = Topics.Shared("ingest", f);
            Assert.Equal($"$share/ingest/{f}", shared);
            Assert.Null(Topics.ValidateFilter(shared));
            Assert.Equal(f, Topics.Unshared(shared));
            foreach (var t in topics) Assert.Equal(Topics.Matches(f, t), Topics.Matches(shared, t));
        }
        Assert.Equal("$share/a/x/#", Topics.Shared("b", "$share/a/x/#")); // already shared: left as it is
        Assert.Null(Topics.Unshared("$share/a"));
    }

    private static string? Level(string? template, string topic, string name) =>
        Topics.TryGetLevel(template, topic, name, out var level) ? level.ToString() : null;

    [Fact]
    public void Template_levels_are_found_by_name()
    {
        const string template = "city/{domain}/{district}/{device}";
        const string topic = "city/traffic/north/tc-01";

        Assert.Equal("traffic", Level(template, topic, "domain"));
        Assert.Equal("north", Level(template, topic, "district"));
        Assert.Equal("tc-01", Level(template, topic, "device"));
        Assert.Null(Level(template, topic, "city"));
    }

    [Fact]
    public void Template_levels_stop_at_the_shorter_of_template_and_topic()
    {
        Assert.Equal("traffic", Level("city/{domain}/{district}/{device}", "city/traffic", "domain"));
        Assert.Null(Level("city/{domain}/{district}/{device}", "city/traffic", "district"));
        Assert.Null(Level("city/{domain}/{district}/{device}", "city/traffic", "device"));

        Assert.Equal("app1@ttn", Level("v3/{application}/devices/{device}", "v3/app1@ttn/devices/dev1/up", "application"));
        Assert.Equal("dev1", Level("v3/{application}/devices/{device}", "v3/app1@ttn/devices/dev1/up", "device"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("city/traffic/north")]
    [InlineData("city/{}/north")]
    public void Templates_without_named_levels_name_nothing(string? template)
    {
        Assert.Null(Level(template, "city/traffic/north", "device"));
        Assert.Null(Level(template, "city/traffic/north", ""));
    }

    [Fact]
    public void Empty_levels_are_taken_as_they_are()
    {
        Assert.Equal("", Level("{a}/{b}", "/x", "a"));
        Assert.Equal("x", Level("{a}/{b}", "/x", "b"));
        Assert.Equal("", Level("{a}/{b}", "x/", "b"));
    }
}
