using CityGateway.Tests.ExchangeIntegration;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Dashboards;

/// <summary>
/// Two federated cities, each with its own gateway and database, release to each other through the real release job
/// and federation client; every dashboard, checked against each city's own database as that city's Grafana would
/// read it, returns data but for the queries dashboards/README.md lists as empty when all is well, and the side-by-side
/// panels show, for every metric received, our measured figure next to the partner's released one.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class SisterCityDashboardTests(ServicesFixture services, ITestOutputHelper output)
{
    /// <summary>The two-city fixture has no serial line: these panels cannot have data there.</summary>
    public static readonly Dictionary<string, string> NoSerialPort = new()
    {
        ["gateway-health.json / Serial ports open"] = "no serial port in this stack",
        ["gateway-health.json / Serial lines per second"] = "no serial port in this stack",
    };

    [Fact]
    public async Task Each_citys_dashboards_show_both_cities_from_real_releases()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        foreach (var c in new[] { cities.A, cities.B }) Assert.True(await c.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default) > 0, $"{c.Id}: no release");
        foreach (var (from, to) in new[] { (cities.A, cities.B), (cities.B, cities.A) })
            await Wait.UntilAsync(async () =>
                {
                    long shared = await services.Influx.CountAsync(from.Database, "shared", "value", $"\"partner\" = '{to.Id}'");
                    return shared > 0 && await services.Influx.CountAsync(to.Database, "partner", "value", $"\"city\" = '{from.Id}'") == shared;
                }, TimeSpan.FromSeconds(60), () => $"{to.Id} has not received all {from.Id} released");

        // Rates (derivatives of the gateway's counters) need two buckets: the alert rules' are one minute wide.
        foreach (var c in new[] { cities.A, cities.B })
            await Wait.UntilAsync(async () => (await services.Influx.RowsAsync(c.Database,
                    "SELECT count(\"received\") FROM \"gateway\" WHERE time >= now() - 10m GROUP BY time(1m) fill(none)")).Count >= 2,
                TimeSpan.FromSeconds(90), () => $"{c.Id}: self-metrics do not span two minutes");

        foreach (var (city, partner) in new[] { (cities.A, cities.B), (cities.B, cities.A) })
        {
            var result = await DashboardCheck.RunAsync(new Uri(services.Influx.Url), city.Database, "3h",
                new DashboardCheckOptions { NotApplicable = new(NoSerialPort) });
            output.WriteLine(result.Summary());
            Assert.True(result.Ok, result.Summary());

            var exchange = result.Variables["exchange.json"];
            Assert.Equal([city.Id], exchange["city"]);
            Assert.Equal([partner.Id], exchange["partner"]);
            // The fixture's agreements share pm25, temperature and flow as means and intensity as a sum, both ways.
            Assert.Equal(["flow", "pm25", "temperature"], exchange["mean_metric"]);
            Assert.Equal(["intensity"], exchange["sum_metric"]);
            Assert.Equal(["15m"], exchange["window"]);
            Assert.Equal([partner.Id], result.Variables["city-overview.json"]["partner"]);
            Assert.Equal(exchange["mean_metric"], result.Variables["city-overview.json"]["mean_metric"]);
            Assert.Equal(exchange["sum_metric"], result.Variables["city-overview.json"]["sum_metric"]);
            // Every copy of every side-by-side panel has both sides: ours (A, measured) and the partner's (B, released).
            foreach (var file in new[] { "exchange.json", "city-overview.json" })
                foreach (var (title, by) in new[] { ("$mean_metric (mean per window) by district: $city and $partner", "mean_metric"),
                             ("$sum_metric (sum per window) by district: $city and $partner", "sum_metric") })
                {
                    var copies = result.Outcomes.Where(o => o.Query.File == file && o.Query.Title == title).ToList();
                    Assert.Equal(exchange[by].Count * 2, copies.Count);
                    Assert.Equal(exchange[by].Order(), copies.Select(o => o.Query.Repeat!.Value.Value).Distinct().Order());
                    Assert.All(copies, o => Assert.True(o.HasData, $"{o.Query}: no data\n{o.Expanded}"));
                }
        }
    }
}
