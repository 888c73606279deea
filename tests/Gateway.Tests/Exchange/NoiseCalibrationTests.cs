using CityGateway.Exchange.Privacy;

namespace CityGateway.Tests.Exchange;

public sealed class NoiseCalibrationTests
{
    private static ReleaseSpec Water(string aggregate = "sum", double epsilon = 1.0, int k = 0, double? minVolume = null) => new()
    {
        Aggregate = aggregate, Lower = 0, Upper = 50, Granularity = 0.1, Epsilon = epsilon, MinDevices = k, MinVolume = minVolume,
    };

    private static ReleaseSpec Traffic(string aggregate = "sum", double epsilon = 1.0, int k = 0, double? minVolume = null) => new()
    {
        Aggregate = aggregate, Lower = 0, Upper = 400, Granularity = 1, Epsilon = epsilon, MinDevices = k, MinVolume = minVolume,
    };

    // ---------------------------------------------------------------- calibration

    [Fact]
    public void Sum_sensitivity_is_the_largest_bound_and_scale_is_sensitivity_over_epsilon()
    {
        var c = Assert.Single(NoiseCalibration.Plan(Traffic(epsilon: 0.5)));
        Assert.Equal(("sum", 0.5, 400L, 400.0, 800.0), (c.Statistic, c.Epsilon, c.SensitivityUnits, c.Sensitivity, c.Scale));

        var signed = Assert.Single(NoiseCalibration.Plan(new ReleaseSpec { Aggregate = "sum", Lower = -30, Upper = 20, Epsilon = 2 }));
        Assert.Equal(30L, signed.SensitivityUnits);
        Assert.Equal(15.0, signed.Scale);
    }

    [Fact]
    public void Granularity_turns_bounds_into_integer_units_with_the_same_scale_in_value_units()
    {
        var c = Assert.Single(NoiseCalibration.Plan(Water(epsilon: 0.25)));
        Assert.Equal(500L, c.SensitivityUnits);      // 50 m³/h in units of 0.1
        Assert.Equal(50.0, c.Sensitivity);
        Assert.Equal(200.0, c.Scale, 1e-9);          // 500 units / 0.25 = 2000 units = 200 m³/h
    }

    [Fact]
    public void Count_sensitivity_is_one_whatever_the_bounds()
    {
        var c = Assert.Single(NoiseCalibration.Plan(Traffic("count", epsilon: 0.2)));
        Assert.Equal(("count", 0.2, 1L, 1.0, 5.0), (c.Statistic, c.Epsilon, c.SensitivityUnits, c.Sensitivity, c.Scale));
    }

    [Fact]
    public void Mean_splits_epsilon_evenly_between_a_noisy_sum_and_a_noisy_count()
    {
        var plan = NoiseCalibration.Plan(Water("mean", epsilon: 0.8));
        Assert.Equal(2, plan.Count);
        Assert.Equal(("sum", 0.4, 500L), (plan[0].Statistic, plan[0].Epsilon, plan[0].SensitivityUnits));
        Assert.Equal(125.0, plan[0].Scale, 1e-9);     // 500 / 0.4 units × 0.1
        Assert.Equal(("count", 0.4, 1L), (plan[1].Statistic, plan[1].Epsilon, plan[1].SensitivityUnits));
        Assert.Equal(2.5, plan[1].Scale, 1e-12);
        Assert.Equal(0.8, plan.Sum(c => c.Epsilon), 1e-15);
    }

    [Theory]
    [InlineData(1.25, 0.1, 13)]     // 12.5 units, not 12.499999999999998
    [InlineData(0.04, 0.1, 0)]
    [InlineData(0.05, 0.1, 1)]
    [InlineData(-0.05, 0.1, -1)]
    [InlineData(3.14159, 0.1, 31)]
    [InlineData(7.0, 0.5, 14)]
    [InlineData(123.4, 0.1, 1234)]
    public void Values_snap_to_the_granularity(double value, double granularity, long units)
    {
        Assert.Equal(units, NoiseCalibration.ToUnits(value, granularity));
    }

    [Fact]
    public void Units_convert_back_without_binary_residue()
    {
        Assert.Equal(123.4, NoiseCalibration.FromUnits(1234, 0.1));
        Assert.Equal(-0.3, NoiseCalibration.FromUnits(-3, 0.1));
    }

    [Fact]
    public void Contributions_are_clamped_before_summing()
    {
        // −5 → 0, 10, 200 → 50 (in units: 0 + 100 + 500); 12.34 → 123 units.
        double[] values = [-5, 10, 200, 12.34];
        Assert.Equal(723L, NoiseCalibration.ClampedSumUnits(values, Water()));
    }

    // ---------------------------------------------------------------- releases, replayed

    [Fact]
    public void Sum_release_is_the_clamped_sum_plus_one_discrete_laplace_draw_in_units()
    {
        double[] values = [-5, 10, 200, 12.34];
        for (int seed = 0; seed < 50; seed++)
        {
            var r = NoiseCalibration.Release(values, Water(epsilon: 0.7), new SeededRandomSource(seed));
            long noise = DiscreteLaplace.Sample(0.7, 500, new SeededRandomSource(seed));
            Assert.True(r.Released);
            Assert.Equal(NoiseCalibration.FromUnits(723 + noise, 0.1), r.Value);
            Assert.Equal(4, r.Devices);
            Assert.Equal(0.7, r.EpsilonSpent);
            Assert.Equal(500 / 0.7 * 0.1, r.Scale, 1e-9);
            // On the 0.1 lattice.
            Assert.Equal(Math.Round(r.Value!.Value * 10), r.Value.Value * 10, 1e-6);
        }
    }

    [Fact]
    public void Count_release_is_the_device_count_plus_one_draw_at_sensitivity_one()
    {
        double[] values = [1, 2, 3, 4, 5, 6, 7];
        for (int seed = 0; seed < 50; seed++)
        {
            var r = NoiseCalibration.Release(values, Traffic("count", epsilon: 0.3), new SeededRandomSource(seed));
            Assert.Equal(7 + DiscreteLaplace.Sample(0.3, 1, new SeededRandomSource(seed)), r.Value);
            Assert.Equal(0.3, r.EpsilonSpent);
            Assert.Equal(1 / 0.3, r.Scale, 1e-12);
        }
    }

    [Fact]
    public void Mean_release_is_noisy_sum_over_noisy_count_each_at_half_epsilon()
    {
        double[] values = [1.0, 2.5, 3.2, 60, 4.4];    // 60 clamps to 50: 10 + 25 + 32 + 500 + 44 = 611 units
        var spec = Water("mean", epsilon: 1.0);
        bool clampedLow = false, interior = false;
        for (int seed = 0; seed < 300; seed++)
        {
            var r = NoiseCalibration.Release(values, spec, new SeededRandomSource(seed));

            var replay = new SeededRandomSource(seed);
            long sum = 611 + DiscreteLaplace.Sample(0.5, 500, replay);
            long count = 5 + DiscreteLaplace.Sample(0.5, 1, replay);
            long mean = (long)Math.Round((double)sum / Math.Max(1, count), MidpointRounding.AwayFromZero);
            long clamped = Math.Clamp(mean, 0, 500);
            clampedLow |= mean < 0;
            interior |= mean == clamped;

            Assert.Equal(NoiseCalibration.FromUnits(clamped, 0.1), r.Value);
            Assert.Equal(1.0, r.EpsilonSpent);
            Assert.Equal(2, r.Noise.Count);
            Assert.InRange(r.Value!.Value, 0, 50);
        }
        Assert.True(clampedLow && interior);
    }

    // ---------------------------------------------------------------- releases, live noise

    [Fact]
    public void With_negligible_noise_the_release_shows_the_clamping()
    {
        // ε = 200 on Δ = 5: γ = 40, P(noise ≠ 0) = 1 − tanh(20) ≈ 10^−17 per release.
        var spec = new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 5, Epsilon = 200, Granularity = 1 };
        double[] values = [-3, 2, 9, 4];                                                                        // 0 + 2 + 5 + 4
        for (int i = 0; i < 20; i++) Assert.Equal(11.0, NoiseCalibration.Release(values, spec).Value);
    }

    [Fact]
    public void Observed_noise_variance_matches_the_calibrated_scale()
    {
        // Water, granularity 0.1, bounds [0, 2] → Δ = 20 units; ε = 1 → p = e^−0.05.
        var spec = new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 2, Granularity = 0.1, Epsilon = 1 };
        double[] values = [0.5, 1.5, 1.9];
        const int n = 40_000;
        double sumSq = 0, sum = 0;
        for (int i = 0; i < n; i++)
        {
            double noiseUnits = Math.Round((NoiseCalibration.Release(values, spec).Value!.Value - 3.9) * 10);
            sum += noiseUnits;
            sumSq += noiseUnits * noiseUnits;
        }
        double variance = sumSq / n - (sum / n) * (sum / n);
        double expected = DiscreteLaplace.Variance(1, 20);    // ≈ 800 units²
        // Relative standard error of the variance ≈ √(5/n) ≈ 1.1 %; 6 % is over 5 SE.
        Assert.InRange(variance, expected * 0.94, expected * 1.06);
    }

    // ---------------------------------------------------------------- suppression and ε

    [Fact]
    public void Fewer_than_k_devices_is_suppressed_before_any_noise_and_spends_nothing()
    {
        var r = NoiseCalibration.Release([3.0, 4.0], Traffic(k: 3), new ForbiddenRandomSource());
        Assert.False(r.Released);
        Assert.Equal("fewer than k devices", r.SuppressedReason);
        Assert.Null(r.Value);
        Assert.Equal(2, r.Devices);
        Assert.Equal(0, r.EpsilonSpent);
        Assert.Empty(r.Noise);

        var atK = NoiseCalibration.Release([3.0, 4.0, 5.0], Traffic(k: 3));
        Assert.True(atK.Released);
        Assert.Equal(1.0, atK.EpsilonSpent);
    }

    [Fact]
    public void Minimum_volume_is_applied_to_the_noisy_value_and_spends_epsilon()
    {
        // Exact sum 100 with a threshold of 100: released iff the noise is ≥ 0.
        double[] values = [30, 30, 40];
        var spec = Traffic(epsilon: 0.5, k: 2, minVolume: 100);
        int suppressed = 0, released = 0;
        for (int seed = 0; seed < 100; seed++)
        {
            var source = new SeededRandomSource(seed);
            var r = NoiseCalibration.Release(values, spec, source);
            long noise = DiscreteLaplace.Sample(0.5, 400, new SeededRandomSource(seed));
            Assert.True(source.BytesUsed > 0);
            Assert.Equal(0.5, r.EpsilonSpent);
            if (noise < 0)
            {
                suppressed++;
                Assert.False(r.Released);
                Assert.Equal("below minimum volume", r.SuppressedReason);
                Assert.Null(r.Value);
            }
            else
            {
                released++;
                Assert.True(r.Released);
                Assert.Equal(100 + noise, r.Value);
            }
        }
        Assert.True(suppressed > 10 && released > 10);
    }

    [Fact]
    public void A_tiny_cell_fails_the_volume_threshold_but_has_paid_for_its_noise()
    {
        var r = NoiseCalibration.Release([1.0, 1.0, 1.0], Traffic("count", epsilon: 1, k: 3, minVolume: 1000));
        Assert.False(r.Released);
        Assert.Equal(NoiseCalibration.BelowMinimumVolume, r.SuppressedReason);
        Assert.Equal(1.0, r.EpsilonSpent);
        Assert.Single(r.Noise);
    }

    // ---------------------------------------------------------------- exact releases

    [Theory]
    [InlineData("mean", 4.0)]
    [InlineData("min", 1.0)]
    [InlineData("max", 9.0)]
    [InlineData("sum", 16.0)]
    [InlineData("count", 4.0)]
    [InlineData("MEAN", 4.0)]
    public void Exact_release_computes_the_aggregate_without_noise(string aggregate, double expected)
    {
        var r = NoiseCalibration.ExactRelease([1.0, 9.0, 2.0, 4.0], aggregate, minDevices: 3);
        Assert.True(r.Released);
        Assert.Equal(expected, r.Value);
        Assert.Equal(0, r.EpsilonSpent);
        Assert.Equal(0, r.Scale);
        Assert.Empty(r.Noise);
    }

    [Fact]
    public void Exact_release_is_suppressed_below_k()
    {
        var r = NoiseCalibration.ExactRelease([21.5, 22.0], "mean", minDevices: 3);
        Assert.False(r.Released);
        Assert.Equal("fewer than k devices", r.SuppressedReason);
        Assert.Null(r.Value);
        Assert.Equal(0, r.EpsilonSpent);
    }

    // ---------------------------------------------------------------- invalid input

    public static TheoryData<ReleaseSpec> InvalidSpecs() => new()
    {
        new ReleaseSpec { Aggregate = "median", Lower = 0, Upper = 1, Epsilon = 1 },
        new ReleaseSpec { Aggregate = "sum", Lower = 5, Upper = 1, Epsilon = 1 },
        new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 1, Epsilon = 0 },
        new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 1, Epsilon = double.NaN },
        new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 1, Epsilon = 1, Granularity = 0 },
        new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = double.PositiveInfinity, Epsilon = 1 },
        new ReleaseSpec { Aggregate = "mean", Lower = 0, Upper = 1, Epsilon = 1, MinDevices = -1 },
        new ReleaseSpec { Aggregate = "sum", Lower = 0, Upper = 1e9, Granularity = 1e-6, Epsilon = 1 },   // 10^15 units
        new ReleaseSpec { Aggregate = "count", Epsilon = 1e-13 },                                          // scale > 2^40
    };

    [Theory]
    [MemberData(nameof(InvalidSpecs))]
    public void Invalid_specs_are_refused(ReleaseSpec spec)
    {
        Assert.ThrowsAny<ArgumentException>(() => NoiseCalibration.Release([1.0, 2.0], spec));
    }

    [Fact]
    public void Non_finite_contributions_are_refused()
    {
        Assert.Throws<ArgumentException>(() => NoiseCalibration.Release([1.0, double.NaN], Traffic()));
        Assert.Throws<ArgumentException>(() => NoiseCalibration.ExactRelease([double.PositiveInfinity], "max", 1));
    }
}
