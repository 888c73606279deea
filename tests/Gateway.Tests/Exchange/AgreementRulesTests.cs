using CityGateway.Exchange;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Exchange;

/// <summary>The agreement rules that keep released figures from pinning down one device, checked at load.</summary>
public sealed class AgreementRulesTests : IDisposable
{
    private readonly TempDir _dir = new("agreements");

    public void Dispose() => _dir.Dispose();

    private static string Env(string metric, string aggregate, int k = 3) =>
        $$"""{ "domain": "environment", "metric": "{{metric}}", "aggregate": "{{aggregate}}", "minDevices": {{k}} }""";

    private static string Traffic(string aggregate = "sum", double epsilon = 0.5, int k = 3, string clamp = "[0, 2000]") =>
        $$"""{ "domain": "traffic", "metric": "intensity", "aggregate": "{{aggregate}}", "minDevices": {{k}}, "clamp": {{clamp}}, "granularity": 1, "epsilon": {{epsilon.ToString(System.Globalization.CultureInfo.InvariantCulture)}}, "minVolume": 5 }""";

    private string Write(string partner, params string[] metrics)
    {
        var path = _dir.File(partner + ".json");
        File.WriteAllText(path, $$"""
            { "partner": { "id": "{{partner}}", "name": "{{partner}}" },
              "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
              "window": "00:15:00", "districts": ["*"], "epsilonPerMonth": 10,
              "metrics": [ {{string.Join(", ", metrics)}} ] }
            """);
        return path;
    }

    private AgreementException Refused() => Assert.Throws<AgreementException>(() => AgreementLoader.LoadFolder(_dir.Path));

    public static TheoryData<string[]> AttackVariantsInOneFile() => new()
    {
        new[] { "mean", "min", "max" },
        new[] { "mean", "min" },
        new[] { "mean", "max" },
        new[] { "min", "max" },
        new[] { "min" },
        new[] { "max" },
    };

    [Theory]
    [MemberData(nameof(AttackVariantsInOneFile))]
    public void Mean_min_and_max_of_an_environment_cell_are_refused_naming_the_file_and_the_metric(string[] aggregates)
    {
        var file = Write("harbour", aggregates.Select(a => Env("pm25", a)).ToArray());
        var e = Refused();
        Assert.Contains(file, e.Message);
        Assert.Contains("environment.pm25", e.Message);
        Assert.Contains("one device's reading", e.Message);
    }

    [Theory]
    [InlineData("mean", "min,max")]
    [InlineData("mean", "min")]
    [InlineData("mean", "max")]
    [InlineData("min", "max")]
    public void The_attack_spread_across_two_partner_files_is_refused(string first, string second)
    {
        Write("alpha", first.Split(',').Select(a => Env("pm25", a)).ToArray());
        var other = Write("beta", second.Split(',').Select(a => Env("pm25", a)).ToArray());
        var e = Refused();
        Assert.Contains(other, e.Message);
        Assert.Contains("environment.pm25", e.Message);
    }

    [Fact]
    public void An_exact_environment_count_is_refused()
    {
        var file = Write("harbour", Env("no2", "count"));
        var e = Refused();
        Assert.Contains(file, e.Message);
        Assert.Contains("environment.no2", e.Message);
        Assert.Contains("count", e.Message);
    }

    [Fact]
    public void Mean_and_sum_of_one_environment_metric_are_refused_in_one_file_and_across_files()
    {
        var one = Write("alpha", Env("pm25", "mean"), Env("pm25", "sum"));
        Assert.Contains(one, Refused().Message);
        File.Delete(one);

        Write("alpha", Env("pm25", "mean"));
        var beta = Write("beta", Env("pm25", "sum"));
        var e = Refused();
        Assert.Contains(beta, e.Message);
        Assert.Contains("environment.pm25", e.Message);
        Assert.Contains("at most one aggregate", e.Message);
    }

    [Fact]
    public void The_same_environment_aggregate_in_many_agreements_and_different_metrics_are_accepted()
    {
        Write("alpha", Env("pm25", "mean"), Env("temperature", "mean"), Traffic());
        Write("beta", Env("pm25", "mean"), Env("no2", "sum"), Traffic());
        Assert.Equal(2, AgreementLoader.LoadFolder(_dir.Path).Count);
    }

    [Theory]
    [InlineData(0.25, 3, "[0, 2000]", "epsilon")]
    [InlineData(0.5, 4, "[0, 2000]", "minDevices")]
    [InlineData(0.5, 3, "[0, 1000]", "clamp")]
    public void A_personal_cell_with_a_different_policy_in_another_agreement_is_refused(double epsilon, int k, string clamp, string key)
    {
        Write("alpha", Traffic());
        var beta = Write("beta", Traffic(epsilon: epsilon, k: k, clamp: clamp));
        var e = Refused();
        Assert.Contains(beta, e.Message);
        Assert.Contains("traffic.intensity", e.Message);
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void An_environment_cell_with_a_different_k_in_another_agreement_is_refused()
    {
        Write("alpha", Env("pm25", "mean", k: 3));
        var beta = Write("beta", Env("pm25", "mean", k: 5));
        Assert.Contains(beta, Refused().Message);
    }
}

public sealed class CityBudgetSettingTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(2_000_000)]
    public void A_city_budget_that_is_not_a_positive_epsilon_fails_naming_the_key(double epsilon)
    {
        var result = new ExchangeOptionsValidator().Validate(null, new ExchangeOptions
        {
            Enabled = true, CityId = "citya", AgreementsPath = "/nonexistent", CityEpsilonPerMonth = epsilon,
        });
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Gateway:Exchange:CityEpsilonPerMonth:", StringComparison.Ordinal));
    }

    [Fact]
    public void The_default_city_budget_is_twenty_per_dataset_per_month() => Assert.Equal(20, new ExchangeOptions().CityEpsilonPerMonth);
}
