namespace CityGateway.Tests.Exchange;

/// <summary>Pearson's chi-square goodness of fit against a discrete Laplace pmf, with tail bins merged.</summary>
internal static class ChiSquare
{
    public const double MinExpected = 5;

    public sealed record Fit(double Statistic, int DegreesOfFreedom, double Critical, double PValue, int Bins, int Samples)
    {
        public override string ToString() =>
            $"χ² = {Statistic:F2}, df = {DegreesOfFreedom}, critical = {Critical:F2}, p = {PValue:G3}, bins = {Bins}, n = {Samples}";
    }

    /// <summary>
    /// Bins: every k with |k| ≤ K on its own, plus (−∞, −K−1] and [K+1, ∞). K is the largest value with
    /// an expected count of at least 5 in bin K and in each tail bin. df = bins − 1 (no fitted parameters).
    /// </summary>
    public static Fit AgainstPmf(IReadOnlyList<long> samples, Func<long, double> pmf, double alpha = 0.001)
    {
        int n = samples.Count;
        int k = 0;
        while (n * pmf(k + 1) >= MinExpected) k++;
        double Tail(int kk)
        {
            double inside = 0;
            for (int j = -kk; j <= kk; j++) inside += pmf(j);
            return (1 - inside) / 2;
        }
        while (k > 0 && n * Tail(k) < MinExpected) k--;
        if (n * Tail(k) < MinExpected || n * pmf(k) < MinExpected)
            throw new InvalidOperationException("too few samples for a chi-square test");

        var observed = new long[2 * k + 3];   // [0] left tail, [1..2k+1] = −k..k, [2k+2] right tail
        foreach (var s in samples)
        {
            if (s < -k) observed[0]++;
            else if (s > k) observed[^1]++;
            else observed[s + k + 1]++;
        }
        double tail = n * Tail(k);
        double stat = 0;
        for (int i = 0; i < observed.Length; i++)
        {
            double expected = i == 0 || i == observed.Length - 1 ? tail : n * pmf(i - k - 1);
            double d = observed[i] - expected;
            stat += d * d / expected;
        }
        int df = observed.Length - 1;
        return new Fit(stat, df, CriticalValue(df, alpha), UpperTail(df, stat), observed.Length, n);
    }

    /// <summary>The x with P(χ²_df &gt; x) = alpha, by bisection on the regularized upper incomplete gamma function.</summary>
    public static double CriticalValue(int df, double alpha)
    {
        double lo = 0, hi = Math.Max(10, df) * 10;
        for (int i = 0; i < 200; i++)
        {
            double mid = (lo + hi) / 2;
            if (UpperTail(df, mid) > alpha) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /// <summary>P(χ²_df &gt; x) = Q(df/2, x/2).</summary>
    public static double UpperTail(int df, double x) => x <= 0 ? 1 : RegularizedGammaQ(df / 2.0, x / 2.0);

    private static double RegularizedGammaQ(double a, double x)
    {
        if (x < a + 1)
        {
            // Series for P(a, x).
            double sum = 1 / a, term = sum;
            for (int n = 1; n < 10_000; n++)
            {
                term *= x / (a + n);
                sum += term;
                if (Math.Abs(term) < Math.Abs(sum) * 1e-16) break;
            }
            return 1 - sum * Math.Exp(-x + a * Math.Log(x) - LogGamma(a));
        }
        // Continued fraction for Q(a, x) (modified Lentz).
        double b = x + 1 - a, c = 1 / 1e-300, d = 1 / b, h = d;
        for (int i = 1; i < 10_000; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b; if (Math.Abs(d) < 1e-300) d = 1e-300;
            c = b + an / c; if (Math.Abs(c) < 1e-300) c = 1e-300;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x + a * Math.Log(x) - LogGamma(a)) * h;
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9).</summary>
    private static double LogGamma(double x)
    {
        double[] c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7,
        ];
        if (x < 0.5) return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double sum = c[0];
        for (int i = 1; i < c.Length; i++) sum += c[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
