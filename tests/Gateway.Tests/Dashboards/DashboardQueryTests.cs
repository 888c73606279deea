using System.Text;
using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Dashboards;

/// <summary>
/// Every template-variable query and every panel query of every dashboard, and every alert rule's query,
/// expanded the way Grafana expands InfluxQL macros, returns data from a real InfluxDB fed by the real
/// gateway; then each alert condition is driven and its rule's query crosses the rule's threshold.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class DashboardQueryTests(ServicesFixture services, ITestOutputHelper output)
{
    private const string Interval = "5s";

    private static string RelativeFilter(string duration) => $"time >= now() - {duration}";

    [Fact]
    public async Task Every_panel_and_variable_query_returns_data_after_a_simulator_run()
    {
        await using var city = await CityDataSet.StartAsync(services, "dash");
        // This data set also holds what is missing in a healthy city (a silent device, quarantined frames, a serial
        // port, releases both ways), so no query is excused: every one must return data.
        var result = await DashboardCheck.RunAsync(new Uri(services.Influx.Url), city.Database, "1h", new DashboardCheckOptions
        {
            Interval = Interval,
            ExcuseExpectedEmpty = false,
            Files = [.. DashboardFiles.DashboardPaths().Select(Path.GetFileName)!],
        });
        output.WriteLine(result.Summary());
        foreach (var (file, variables) in result.Variables)
            foreach (var (name, values) in variables) output.WriteLine($"{file} ${name} = ({string.Join("|", values)})");
        int variableQueries = result.Count("variable"), panelQueries = result.Count("panel");
        Assert.True(variableQueries >= 10 && panelQueries >= 40, $"only {variableQueries} variable and {panelQueries} panel queries");
        // Each side-by-side panel ran once per metric the partner releases to us with its aggregate (two queries each).
        Assert.Equal(["pm25"], result.Variables["exchange.json"]["mean_metric"]);
        Assert.Equal(["intensity"], result.Variables["exchange.json"]["sum_metric"]);
        Assert.Equal(2, result.Outcomes.Count(o => o.Query.File == "exchange.json" && o.Query.Title == "$mean_metric (mean per window) by district: $city and $partner"));
        Assert.Equal(2, result.Outcomes.Count(o => o.Query.File == "exchange.json" && o.Query.Title == "$sum_metric (sum per window) by district: $city and $partner"));
        Assert.True(result.Ok, result.Summary());
    }

    [Fact]
    public async Task Each_alert_rule_query_runs_and_crosses_its_threshold_when_its_condition_is_driven()
    {
        await using var city = await CityDataSet.StartAsync(services, "alert");
        var rules = DashboardFiles.AlertRules().ToDictionary(r => r.Uid);

        async Task<List<CityDataSet.Series>> Run(DashboardFiles.AlertRule rule) =>
            await city.QueryAsync(DashboardFiles.Expand(rule.Query, RelativeFilter(rule.FromSeconds + "s"), Interval, new Dictionary<string, IReadOnlyList<string>>()));
        static bool Fires(DashboardFiles.AlertRule rule, CityDataSet.Series s) =>
            s.LastValue() is { } v && (rule.Op == "gt" ? v > rule.Threshold : v < rule.Threshold);

        // Before: every rule's query runs; the gateway's own series are healthy; active devices are not silent.
        var before = new Dictionary<string, List<CityDataSet.Series>>();
        foreach (var rule in rules.Values) before[rule.Uid] = await Run(rule);
        // (The derivative rules need two 1-minute buckets of the gateway's counters: they may have no series yet.)
        foreach (var uid in new[] { "city-pm25-who", "city-water-pressure-low", "city-sensor-silent", "city-journal-near-bound" })
            Assert.True(before[uid].Count > 0, $"{uid}: no series before driving the condition");
        foreach (var uid in new[] { "city-journal-near-bound", "city-influx-write-failures", "city-quarantine-spike" })
            Assert.DoesNotContain(before[uid], s => Fires(rules[uid], s));
        Assert.DoesNotContain(before["city-influx-unreachable"], s => Fires(rules["city-influx-unreachable"], s));
        var silentBefore = before["city-sensor-silent"];
        Assert.Contains(silentBefore, s => s.Tags["device"] == CityDataSet.SilentDevice && Fires(rules["city-sensor-silent"], s));
        var active = city.Published.Select(m => m.Device).ToHashSet();
        Assert.All(silentBefore.Where(s => active.Contains(s.Tags["device"])), s => Assert.False(Fires(rules["city-sensor-silent"], s), $"active device reported silent: {s}"));

        // Drive: a PM2.5 spike and a pressure drop through the broker and the gateway.
        var aq = city.Published.First(m => m.Format == "json" && m.DeviceType.StartsWith("aq-station", StringComparison.Ordinal));
        var meter = city.Published.First(m => m.Format == "json" && m.DeviceType == DeviceTypes.FlowMeter.Name);
        Assert.DoesNotContain(before["city-pm25-who"], s => s.Tags["device"] == aq.Device && s.LastValue() > 1000);
        long ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var publisher = await Publisher.ConnectAsync(services.Broker.Url))
        {
            publisher.Publish(aq.Topic, $"{{\"device\":\"{aq.Device}\",\"ts\":{ms},\"pm25\":3000,\"seq\":1000}}");
            publisher.Publish(meter.Topic, $"{{\"device\":\"{meter.Device}\",\"ts\":{ms},\"pressure_kpa\":95,\"seq\":1000}}");
            await publisher.FlushAsync();
        }
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(city.Database, "environment", "pm25", "\"pm25\" >= 3000") == 1
                                          && await services.Influx.CountAsync(city.Database, "water", "pressure", "\"pressure\" < 1") == 1,
            TimeSpan.FromSeconds(20), () => "the spike and the pressure drop were not stored");

        // Drive: the gateway-side conditions as another instance's self-metrics points.
        var now = DateTimeOffset.UtcNow;
        const string Other = "gw-faulty";
        var lines = new StringBuilder()
            .Append($"gateway,instance={Other} quarantined=0i,write_failures=0i,journal_bytes=10i,journal_max_bytes=1000i,influx_reachable=true {CityDataSet.Ns(now.AddMinutes(-3))}\n")
            .Append($"gateway,instance={Other} quarantined=400i,write_failures=7i,journal_bytes=900i,journal_max_bytes=1000i,influx_reachable=false {CityDataSet.Ns(now.AddSeconds(-10))}\n")
            .Append($"gateway,instance={Other},reason=unknown_device quarantined=400i {CityDataSet.Ns(now.AddSeconds(-10))}\n");
        await city.WriteAsync(lines.ToString());

        var expectations = new (string Uid, string Tag, string Value)[]
        {
            ("city-pm25-who", "device", aq.Device),
            ("city-water-pressure-low", "device", meter.Device),
            ("city-sensor-silent", "device", CityDataSet.SilentDevice),
            ("city-quarantine-spike", "instance", Other),
            ("city-journal-near-bound", "instance", Other),
            ("city-influx-write-failures", "instance", Other),
            ("city-influx-unreachable", "instance", Other),
        };
        Assert.Equal(rules.Keys.Order(), expectations.Select(e => e.Uid).Order());
        foreach (var (uid, tag, value) in expectations)
        {
            var rule = rules[uid];
            var series = await Run(rule);
            var target = series.Where(s => s.Tags.GetValueOrDefault(tag) == value).ToList();
            output.WriteLine($"{uid} ({rule.Op} {rule.Threshold}): {string.Join("; ", target)}");
            Assert.True(target.Count > 0, $"{uid}: no series for {tag}={value}; got {string.Join("; ", series)}");
            Assert.True(target.All(s => Fires(rule, s)), $"{uid}: {tag}={value} does not cross {rule.Op} {rule.Threshold}: {string.Join("; ", target)}");
        }
        // The healthy gateway instance still does not fire the gateway rules.
        foreach (var uid in new[] { "city-journal-near-bound", "city-influx-write-failures", "city-quarantine-spike", "city-influx-unreachable" })
            Assert.DoesNotContain(await Run(rules[uid]), s => s.Tags.GetValueOrDefault("instance") == city.Instance && Fires(rules[uid], s));
    }
}
