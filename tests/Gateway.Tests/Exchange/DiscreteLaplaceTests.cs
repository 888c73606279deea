using CityGateway.Exchange.Privacy;
using Xunit.Abstractions;

namespace CityGateway.Tests.Exchange;

public sealed class DiscreteLaplaceTests(ITestOutputHelper output)
{
    private const int Samples = 200_000;
    private const double Alpha = 0.001;

    private static long[] Draw(int n, Func<long> sample)
    {
        var result = new long[n];
        for (int i = 0; i < n; i++) result[i] = sample();
        return result;
    }

    /// <summary>Sample mean within 5 standard errors of 0; sample variance within 5 standard errors of 2p/(1−p)².</summary>
    private void AssertMoments(long[] samples, double epsilon, long sensitivity)
    {
        double n = samples.Length;
        double mean = samples.Average(s => (double)s);
        double variance = samples.Sum(s => (s - mean) * (s - mean)) / (n - 1);

        double p = Math.Exp(-epsilon / sensitivity);
        double expectedVariance = 2 * p / ((1 - p) * (1 - p));
        Assert.Equal(expectedVariance, DiscreteLaplace.Variance(epsilon, sensitivity), expectedVariance * 1e-9);
        double fourth = 0;
        for (long k = 1; k < 100_000; k++)
        {
            double term = 2 * (double)k * k * k * k * DiscreteLaplace.Pmf(k, epsilon, sensitivity);
            fourth += term;
            if (term < fourth * 1e-18) break;
        }
        double meanSe = Math.Sqrt(expectedVariance / n);
        double varianceSe = Math.Sqrt((fourth - expectedVariance * expectedVariance) / n);
        output.WriteLine($"  mean = {mean:F4} (SE {meanSe:F4}); variance = {variance:F3}, expected 2p/(1−p)² = {expectedVariance:F3} (SE {varianceSe:F3})");
        Assert.InRange(mean, -5 * meanSe, 5 * meanSe);
        Assert.InRange(variance, expectedVariance - 5 * varianceSe, expectedVariance + 5 * varianceSe);
    }

    private ChiSquare.Fit Fit(long[] samples, double epsilon, long sensitivity, string label, double alpha = Alpha)
    {
        var fit = ChiSquare.AgainstPmf(samples, k => DiscreteLaplace.Pmf(k, epsilon, sensitivity), alpha);
        output.WriteLine($"{label} against pmf(ε={epsilon}, Δ={sensitivity}): {fit}");
        return fit;
    }

    [Theory]
    [InlineData(1.0, 1L, 11)]
    [InlineData(0.1, 1L, 12)]
    [InlineData(0.3, 7L, 13)]
    [InlineData(2.0, 1L, 14)]
    [InlineData(0.5, 3L, 15)]
    [InlineData(3.0, 2L, 16)]
    public void Replayed_samples_fit_the_pmf_and_its_moments(double epsilon, long sensitivity, int seed)
    {
        var source = new SeededRandomSource(seed);
        var samples = Draw(Samples, () => DiscreteLaplace.Sample(epsilon, sensitivity, source));

        var fit = Fit(samples, epsilon, sensitivity, $"seeded source {seed}");
        Assert.True(fit.Statistic < fit.Critical, fit.ToString());
        AssertMoments(samples, epsilon, sensitivity);
    }

    // The default path draws from the OS CSPRNG, so this test is random: it uses α = 1e-6 so that it
    // fails by chance about twice in a million runs; a wrong distribution scores far above that
    // critical value too (see the tests with wrong samplers).
    [Theory]
    [InlineData(1.0, 1L)]
    [InlineData(0.25, 2L)]
    public void Default_cryptographic_path_fits_the_pmf_and_its_moments(double epsilon, long sensitivity)
    {
        var samples = Draw(Samples, () => DiscreteLaplace.Sample(epsilon, sensitivity));

        var fit = Fit(samples, epsilon, sensitivity, "RandomNumberGenerator", alpha: 1e-6);
        Assert.True(fit.Statistic < fit.Critical, fit.ToString());
        AssertMoments(samples, epsilon, sensitivity);
    }

    [Fact]
    public void Scale_overload_draws_with_ratio_exp_minus_one_over_scale()
    {
        var source = new SeededRandomSource(21);
        var samples = Draw(Samples, () => DiscreteLaplace.Sample(2.5, source));

        // b = 2.5 is ε/Δ = 2/5.
        var fit = Fit(samples, 2, 5, "Sample(scale 2.5)");
        Assert.True(fit.Statistic < fit.Critical, fit.ToString());
        AssertMoments(samples, 2, 5);
    }

    [Fact]
    public void The_test_rejects_a_sampler_with_a_ten_percent_wrong_scale()
    {
        var source = new SeededRandomSource(31);
        var samples = Draw(Samples, () => DiscreteLaplace.Sample(0.9, 1, source));

        var fit = Fit(samples, 1.0, 1, "sampler at ε = 0.9");
        Assert.True(fit.Statistic > fit.Critical, fit.ToString());
    }

    [Fact]
    public void The_test_rejects_a_rounded_continuous_laplace()
    {
        var random = new Random(32);
        var samples = Draw(Samples, () =>
        {
            double a = -Math.Log(1 - random.NextDouble()), b = -Math.Log(1 - random.NextDouble());
            return (long)Math.Round(a - b, MidpointRounding.AwayFromZero);   // Laplace(scale 1) rounded
        });

        var fit = Fit(samples, 1.0, 1, "rounded continuous Laplace(1)");
        Assert.True(fit.Statistic > fit.Critical, fit.ToString());
    }

    [Fact]
    public void The_test_rejects_a_signed_geometric_that_counts_zero_twice()
    {
        var random = new Random(33);
        double p = Math.Exp(-1.0);
        var samples = Draw(Samples, () =>
        {
            long y = (long)Math.Floor(Math.Log(1 - random.NextDouble()) / Math.Log(p));
            return random.Next(2) == 0 ? y : -y;
        });

        var fit = Fit(samples, 1.0, 1, "±geometric without rejecting −0");
        Assert.True(fit.Statistic > fit.Critical, fit.ToString());
    }

    [Theory]
    [InlineData(1, 10.828)]
    [InlineData(2, 13.816)]
    [InlineData(5, 20.515)]
    [InlineData(10, 29.588)]
    [InlineData(30, 59.703)]
    [InlineData(100, 149.449)]
    public void Chi_square_critical_values_match_the_table(int df, double tabulated)
    {
        Assert.Equal(tabulated, ChiSquare.CriticalValue(df, 0.001), 0.002);
    }

    [Theory]
    [InlineData(1.0, 1L)]
    [InlineData(0.1, 3L)]
    [InlineData(5.0, 2L)]
    public void Pmf_is_the_two_sided_geometric_and_sums_to_one(double epsilon, long sensitivity)
    {
        double p = Math.Exp(-epsilon / sensitivity);
        double total = 0;
        for (long k = -20_000; k <= 20_000; k++) total += DiscreteLaplace.Pmf(k, epsilon, sensitivity);
        Assert.Equal(1.0, total, 1e-9);
        for (long k = -5; k <= 5; k++)
        {
            Assert.Equal((1 - p) / (1 + p) * Math.Pow(p, Math.Abs(k)), DiscreteLaplace.Pmf(k, epsilon, sensitivity), 1e-12);
            // Neighbouring outputs differ by exactly the factor exp(ε/Δ): the privacy ratio.
            Assert.Equal(Math.Exp(-epsilon / sensitivity),
                DiscreteLaplace.Pmf(Math.Abs(k) + 1, epsilon, sensitivity) / DiscreteLaplace.Pmf(Math.Abs(k), epsilon, sensitivity), 1e-12);
        }
    }

    [Theory]
    [InlineData(0.0, 1L)]
    [InlineData(-1.0, 1L)]
    [InlineData(double.NaN, 1L)]
    [InlineData(double.PositiveInfinity, 1L)]
    [InlineData(1.0, 0L)]
    [InlineData(1.0, -3L)]
    [InlineData(1e-9, 10_000L)]   // scale 10^13 > 2^40
    public void Invalid_parameters_are_refused(double epsilon, long sensitivity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DiscreteLaplace.Sample(epsilon, sensitivity));
        Assert.Throws<ArgumentOutOfRangeException>(() => DiscreteLaplace.Pmf(0, epsilon, sensitivity));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-2.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(1e13)]
    public void Invalid_scales_are_refused(double scale)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DiscreteLaplace.Sample(scale));
    }

    [Theory]
    [InlineData((byte)0x00)]
    [InlineData((byte)0xFF)]
    public void A_stuck_random_source_raises_instead_of_looping(byte value)
    {
        var source = new ConstantRandomSource(value);
        Assert.Throws<InvalidOperationException>(() => DiscreteLaplace.Sample(1.0, 1, source));
        Assert.Throws<InvalidOperationException>(() => DiscreteLaplace.Sample(0.3, 7, source));
    }

    [Fact]
    public void Largest_scale_and_largest_epsilon_stay_within_the_cap()
    {
        for (int i = 0; i < 200; i++)
        {
            long k = DiscreteLaplace.Sample(DiscreteLaplace.MaxScale);
            Assert.InRange(k, -DiscreteLaplace.MaxMagnitude, DiscreteLaplace.MaxMagnitude);
        }
        // A very large ε leaves (almost surely exactly) no noise and terminates.
        for (int i = 0; i < 200; i++) Assert.Equal(0, DiscreteLaplace.Sample(1e300, 1));
    }

    [Fact]
    public void Replay_is_deterministic_and_the_default_path_is_not_constant()
    {
        var a = Draw(1000, SamplerFor(new SeededRandomSource(7)));
        var b = Draw(1000, SamplerFor(new SeededRandomSource(7)));
        Assert.Equal(a, b);

        var live = Draw(1000, () => DiscreteLaplace.Sample(0.5, 1));
        Assert.True(live.Distinct().Count() > 5);
    }

    private static Func<long> SamplerFor(IRandomSource source) => () => DiscreteLaplace.Sample(0.5, 1, source);

    [Theory]
    [InlineData(0.1)]
    [InlineData(3.0)]
    [InlineData(2.5)]
    [InlineData(1e-300)]
    [InlineData(7e200)]
    public void Doubles_convert_to_their_exact_fractions(double value)
    {
        var (num, den) = DiscreteLaplace.ExactFraction(value);
        Assert.True(num.Sign > 0 && den.Sign > 0);
        Assert.True(System.Numerics.BigInteger.GreatestCommonDivisor(num, den).IsOne);
        Assert.True(den.IsPowerOfTwo);
        int shift = (int)(den.GetBitLength() - 1);
        Assert.Equal(value, Math.ScaleB((double)num, -shift));
    }
}
