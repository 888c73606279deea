using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Dashboards;

/// <summary>The dashboard check itself: it reports what is empty, excuses only what is listed, and reports stale entries.</summary>
[Collection(ServicesCollection.Name)]
public sealed class DashboardCheckTests(ServicesFixture services)
{
    [Fact]
    public async Task On_a_database_without_data_every_query_fails_but_the_listed_one_and_entries_naming_no_query_are_reported()
    {
        using var dir = new TempDir("dash-readme");
        File.WriteAllText(dir.File("README.md"), DashboardFiles.ExpectedEmptyHeading + "\n\n"
            + "- `city-overview.json` / **Silent sensors** (refId A): nothing is silent\n"
            + "- `exchange.json` / **Panel that was renamed** (refId A): a stale entry\n");
        var result = await DashboardCheck.RunAsync(new Uri(services.Influx.Url), ServicesFixture.NewDatabase("dashnone"), "1h", new DashboardCheckOptions
        {
            ReadmePath = dir.File("README.md"),
            NotApplicable = { ["traffic.json / No such panel"] = "a stale key" },
        });

        Assert.False(result.Ok);
        var excused = Assert.Single(result.Excused);
        Assert.Equal(("city-overview.json", "Silent sensors", "A"), (excused.Query.File, excused.Query.Title, excused.Query.RefId));
        Assert.Equal(result.Outcomes.Count - 1, result.Failures.Count);
        Assert.True(result.Count("variable") >= 10 && result.Count("panel") >= 40 && result.Count("alert") == DashboardFiles.AlertRules().Count, result.Summary());
        Assert.Equal(2, result.Unmatched.Count);
        Assert.Contains(result.Unmatched, u => u.Contains("README.md:4") && u.Contains("Panel that was renamed"));
        Assert.Contains(result.Unmatched, u => u.Contains("traffic.json / No such panel"));
        var summary = result.Summary();
        Assert.Contains($"{result.Outcomes.Count} queries", summary);
        Assert.Contains("FAIL exchange.json / $partner", summary);
    }

    [Fact]
    public async Task Files_restricts_the_check_and_an_unknown_file_is_refused()
    {
        var result = await DashboardCheck.RunAsync(new Uri(services.Influx.Url), ServicesFixture.NewDatabase("dashnone"), "1h",
            new DashboardCheckOptions { Files = ["exchange.json"] });
        Assert.All(result.Outcomes, o => Assert.Equal("exchange.json", o.Query.File));
        Assert.Empty(result.Unmatched); // README entries of other files are not checked here
        await Assert.ThrowsAsync<ArgumentException>(() => DashboardCheck.RunAsync(new Uri(services.Influx.Url), "city", "1h",
            new DashboardCheckOptions { Files = ["exchange.jsn"] }));
        await Assert.ThrowsAsync<FormatException>(() => DashboardCheck.RunAsync(new Uri(services.Influx.Url), "city", "3 hours"));
    }

    [Theory]
    [InlineData("1h", "5s")]
    [InlineData("3h", "10s")]
    [InlineData("6h", "20s")]
    [InlineData("24h", "1m")]
    [InlineData("10m", "5s")]
    public void Interval_is_rounded_as_grafana_rounds_it_and_not_below_the_data_sources_minimum(string range, string interval) =>
        Assert.Equal(interval, DashboardCheck.GrafanaInterval(DashboardFiles.ParseDuration(range)));
}
