using System.Numerics;

namespace CityGateway.Exchange.Privacy;

/// <summary>
/// The discrete Laplace (two-sided geometric) distribution on the integers:
/// P(k) = (1 − p)/(1 + p) · p^|k| with p = exp(−ε/Δ), i.e. P(k) ∝ exp(−|k|·ε/Δ). Adding one draw to an
/// integer statistic whose L1 sensitivity is Δ makes its release ε-differentially private, and
/// because the noise and the statistic are both integers there is no floating-point
/// representation for an observer to exploit (the weakness of adding a double Laplace sample to a
/// double).
///
/// <para><b>Method.</b> Sampling is exact, in integer arithmetic only (Canonne, Kamath and Steinke,
/// "The Discrete Gaussian for Differential Privacy", 2020, algorithm 2). Write γ = ε/Δ as an exact
/// fraction s/t of integers (every finite double is m·2^e, so ε/Δ is a fraction exactly; the
/// mechanism is exactly ε-DP for the double ε it was given). Then repeat:</para>
/// <list type="number">
/// <item>U uniform on {0, …, t−1}; continue only with probability exp(−U/t) (exact Bernoulli).</item>
/// <item>V = number of successes before the first failure of Bernoulli(exp(−1)) draws, so P(V = v) ∝ e^−v.</item>
/// <item>X = U + t·V. Each natural number x has exactly one such decomposition and
///   P(X = x) ∝ exp(−U/t)·exp(−V) = exp(−x/t): X is geometric with ratio exp(−1/t).</item>
/// <item>Y = ⌊X/s⌋. Summing the geometric weights over the s values of X that map to y gives
///   P(Y = y) ∝ exp(−y·s/t) = p^y: Y is geometric with ratio p on {0, 1, …}.</item>
/// <item>A fair sign bit B; if B is negative and Y = 0, start again (otherwise 0 would get twice the
///   weight of any other value); return ±Y. Then P(k) ∝ p^|k| on all integers, which is the target.</item>
/// </list>
/// <para>The Bernoulli draws use uniform integers by rejection on bits from the source, so every
/// probability is a rational evaluated exactly. (The classical alternative, the difference of two
/// geometric draws each obtained by inverting a 53-bit uniform double, is correct only up to the
/// rounding of the logarithm and truncates the tail where p^k &lt; 2^−53; the integer method has
/// neither defect.) An outer iteration is accepted with probability at least (1 − e^−1)/2 ≈ 0.32.</para>
///
/// <para><b>Bounds.</b> ε and Δ must be positive and finite and the scale Δ/ε at most
/// <see cref="MaxScale"/> (2^40). Results are capped to ±<see cref="MaxMagnitude"/> (2^53, so every
/// result is exactly representable as a double); at the largest scale the probability of a draw
/// that large is below exp(−8192), so the cap never alters an observable frequency, and it bounds
/// the loop that generates V. A broken random source is detected by iteration caps and raises
/// <see cref="InvalidOperationException"/> instead of spinning.</para>
/// </summary>
public static class DiscreteLaplace
{
    /// <summary>Largest accepted scale Δ/ε (= 1/γ): 2^40.</summary>
    public const double MaxScale = 1099511627776.0;

    /// <summary>Largest magnitude a sample can take: 2^53.</summary>
    public const long MaxMagnitude = 1L << 53;

    /// <summary>Outer rejection rounds before the source is declared broken (each accepts with p ≥ 0.3).</summary>
    internal const int MaxRounds = 10_000;

    /// <summary>Noise for a statistic with L1 sensitivity <paramref name="sensitivity"/> released at ε = <paramref name="epsilon"/>: P(k) ∝ exp(−|k|·ε/Δ).</summary>
    public static long Sample(double epsilon, long sensitivity) =>
        Sample(epsilon, sensitivity, CryptoRandomSource.ForCurrentThread);

    /// <summary>Noise with scale b (P(k) ∝ exp(−|k|/b)); the same as <c>Sample(1/b, 1)</c> but with b taken exactly.</summary>
    public static long Sample(double scale) => Sample(scale, CryptoRandomSource.ForCurrentThread);

    /// <summary><see cref="Sample(double, long)"/> drawing from <paramref name="source"/> (tests replay fixed streams).</summary>
    internal static long Sample(double epsilon, long sensitivity, IRandomSource source)
    {
        ValidateEpsilonSensitivity(epsilon, sensitivity);
        // γ = ε/Δ = (m·2^e)/Δ.
        var (num, den) = ExactFraction(epsilon);
        return SampleRatio(num, den * sensitivity, source);
    }

    /// <summary><see cref="Sample(double)"/> drawing from <paramref name="source"/>.</summary>
    internal static long Sample(double scale, IRandomSource source)
    {
        ValidateScale(scale);
        // γ = 1/b = den/num for b = num/den.
        var (num, den) = ExactFraction(scale);
        return SampleRatio(den, num, source);
    }

    /// <summary>
    /// The probability of <paramref name="k"/> under the distribution <see cref="Sample(double, long)"/>
    /// draws from: (1 − p)/(1 + p) · p^|k| with p = exp(−ε/Δ), evaluated as tanh(γ/2)·exp(−|k|γ) to keep
    /// precision for small γ.
    /// </summary>
    public static double Pmf(long k, double epsilon, long sensitivity)
    {
        ValidateEpsilonSensitivity(epsilon, sensitivity);
        double gamma = epsilon / sensitivity;
        double magnitude = Math.Abs((double)k);
        return Math.Tanh(gamma / 2) * Math.Exp(-magnitude * gamma);
    }

    /// <summary>The variance 2p/(1 − p)² of the distribution with parameters ε, Δ.</summary>
    public static double Variance(double epsilon, long sensitivity)
    {
        ValidateEpsilonSensitivity(epsilon, sensitivity);
        double gamma = epsilon / sensitivity;
        double p = Math.Exp(-gamma);
        double oneMinusP = -double.ExpM1(-gamma);
        return 2 * p / (oneMinusP * oneMinusP);
    }

    private static void ValidateEpsilonSensitivity(double epsilon, long sensitivity)
    {
        if (!double.IsFinite(epsilon) || epsilon <= 0)
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "ε must be a positive finite number");
        if (sensitivity <= 0)
            throw new ArgumentOutOfRangeException(nameof(sensitivity), sensitivity, "the sensitivity must be at least 1");
        if (sensitivity / epsilon > MaxScale)
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon,
                $"the scale Δ/ε = {sensitivity}/{epsilon} exceeds the supported maximum {MaxScale}");
    }

    private static void ValidateScale(double scale)
    {
        if (!double.IsFinite(scale) || scale <= 0)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "the scale must be a positive finite number");
        if (scale > MaxScale)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, $"the scale exceeds the supported maximum {MaxScale}");
    }

    /// <summary>A positive finite double as the exact fraction numerator/denominator (denominator a power of two).</summary>
    internal static (BigInteger Numerator, BigInteger Denominator) ExactFraction(double value)
    {
        long bits = BitConverter.DoubleToInt64Bits(value);
        int exponentBits = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xF_FFFF_FFFF_FFFFL;
        int exponent;
        if (exponentBits == 0) exponent = -1074;                 // subnormal: m · 2^−1074
        else { mantissa |= 1L << 52; exponent = exponentBits - 1075; }
        if (mantissa == 0) throw new ArgumentOutOfRangeException(nameof(value), "zero has no positive fraction");
        int trailing = BitOperations.TrailingZeroCount(mantissa);
        mantissa >>= trailing;
        exponent += trailing;
        return exponent >= 0
            ? (new BigInteger(mantissa) << exponent, BigInteger.One)
            : (new BigInteger(mantissa), BigInteger.One << -exponent);
    }

    /// <summary>The sampler proper for γ = s/t (both ≥ 1 after validation); see the type's remarks.</summary>
    private static long SampleRatio(BigInteger s, BigInteger t, IRandomSource source)
    {
        var g = BigInteger.GreatestCommonDivisor(s, t);
        if (!g.IsOne) { s /= g; t /= g; }

        // V at or beyond this makes Y > MaxMagnitude already: t·V ≥ (MaxMagnitude + 1)·s.
        var vCap = ((MaxMagnitude + 1) * s + t - 1) / t;

        for (int round = 0; round < MaxRounds; round++)
        {
            var u = ExactDraws.Uniform(t, source);
            if (!ExactDraws.BernoulliExpMinus(u, t, source)) continue;

            BigInteger v = BigInteger.Zero;
            bool capped = false;
            while (ExactDraws.BernoulliExpMinus(BigInteger.One, BigInteger.One, source))
            {
                v += 1;
                if (v >= vCap) { capped = true; break; }
            }

            long y;
            if (capped) y = MaxMagnitude;
            else
            {
                var big = (u + t * v) / s;
                y = big > MaxMagnitude ? MaxMagnitude : (long)big;
            }

            bool negative = ExactDraws.Coin(source);
            if (negative && y == 0) continue;
            return negative ? -y : y;
        }
        throw ExactDraws.StuckSource();
    }
}
