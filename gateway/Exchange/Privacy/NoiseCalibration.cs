using System.Globalization;

namespace CityGateway.Exchange.Privacy;

/// <summary>
/// What to release for one district × time-window cell and how: the aggregate, the per-device
/// clamping bounds, the granularity the values are snapped to, the ε of this release, the minimum
/// number of contributing devices (k) and an optional minimum volume.
/// </summary>
public sealed record ReleaseSpec
{
    /// <summary>"sum", "count" or "mean" (case-insensitive).</summary>
    public required string Aggregate { get; init; }

    /// <summary>Lower clamping bound for one device's contribution in the window (ignored for "count").</summary>
    public double Lower { get; init; }

    /// <summary>Upper clamping bound for one device's contribution in the window (ignored for "count").</summary>
    public double Upper { get; init; }

    /// <summary>Resolution g of the released value: contributions become integers in units of g (1 for counts of things; ignored for "count").</summary>
    public double Granularity { get; init; } = 1;

    /// <summary>The ε this release costs when noise is drawn.</summary>
    public required double Epsilon { get; init; }

    /// <summary>k: cells with fewer contributing devices are suppressed before any noise is drawn.</summary>
    public int MinDevices { get; init; }

    /// <summary>If set, a cell whose noisy value is below this is suppressed after the noise is drawn.</summary>
    public double? MinVolume { get; init; }
}

/// <summary>
/// One noisy statistic inside a release: which statistic ("sum" or "count"), its share of ε, its L1
/// sensitivity (in integer units of the granularity, and in value units) and the resulting
/// discrete-Laplace scale Δ/ε (in value units).
/// </summary>
public sealed record NoiseComponent(string Statistic, double Epsilon, long SensitivityUnits, double Sensitivity, double Scale);

/// <summary>
/// The outcome of releasing one cell. <see cref="Value"/> is null when suppressed (the noisy value of a
/// cell suppressed for volume is not disclosed). <see cref="EpsilonSpent"/> is what the release cost
/// and must be charged to the partner's budget: the full ε whenever noise was drawn, 0 otherwise.
/// <see cref="Scale"/> is the noise scale of the primary statistic in value units (the sum for
/// "sum" and "mean", the count for "count"; 0 for exact releases); <see cref="Noise"/> lists every
/// noisy statistic that was drawn with its ε share (empty when none was).
/// </summary>
public sealed record NoisyRelease(
    bool Released,
    string? SuppressedReason,
    double? Value,
    int Devices,
    double EpsilonSpent,
    double Scale,
    IReadOnlyList<NoiseComponent> Noise);

/// <summary>
/// Turns per-device contributions into a released aggregate: clamping, snapping to a granularity,
/// L1 sensitivity, ε split, discrete-Laplace noise, k-suppression and minimum-volume suppression.
///
/// <para><b>Neighbouring datasets.</b> Two inputs are neighbours when one device's contribution is
/// present in one and absent from the other (a device joins or leaves the cell); each element of
/// <c>perDeviceValues</c> is one device's total for the window, so a device never appears twice.
/// When every device contributes to at most one district per window, the cells of one window's
/// table cover disjoint devices and (parallel composition) the table as a whole costs the ε of one
/// cell; successive windows compose sequentially and are charged one by one to the
/// <see cref="PrivacyBudgetLedger"/>. Reserve the ε in the ledger <i>before</i> calling
/// <see cref="Release(IReadOnlyList{double}, ReleaseSpec)"/>, publish at most one noisy value per
/// reservation, and on a retry republish the stored value rather than drawing fresh noise.</para>
///
/// <para><b>Units.</b> With granularity g, the bounds become integers L = round(Lower/g) and
/// U = round(Upper/g), each contribution becomes clamp(round(v/g), L, U) (clamping happens before
/// summing), sums and noise are integers in units of g, and the result is multiplied back by g.</para>
///
/// <para><b>Sensitivities.</b> sum: Δ = max(|L|, |U|) units, since adding or removing one device
/// changes the sum by its clamped contribution. count: Δ = 1. mean: released as
/// noisy sum / max(1, noisy count), with ε split evenly — ε/2 for the sum (Δ = max(|L|, |U|)) and ε/2
/// for the count (Δ = 1); by sequential composition the pair is ε-DP, and the ratio, its rounding to
/// g and its clamping to [Lower, Upper] (a mean of clamped values always lies there) are
/// post-processing and cost nothing.</para>
///
/// <para><b>When ε is spent.</b> A cell with fewer than k devices is suppressed before any noise is
/// drawn and costs nothing. Otherwise all of the noise is drawn and the full ε is spent — also when
/// the noisy value then falls below the minimum volume and the cell is suppressed, because the
/// suppression decision is itself a function of the noisy value. (The k-threshold of
/// <see cref="Release(IReadOnlyList{double}, ReleaseSpec)"/> uses the exact device count, which is not
/// differentially private: the release job does not use it. It releases personal cells with
/// <see cref="ReleaseCell(IReadOnlyList{double}, ReleaseSpec)"/>, where k is compared with a noisy
/// count and no exact count decides anything.)</para>
///
/// <para>The noisy sum and count are unbiased and are not clamped at zero; a negative noisy count or
/// sum can be published unless a minimum volume is configured. The minimum volume is compared with
/// the released value (the noisy sum, the noisy count, or the noisy mean).</para>
/// </summary>
public static class NoiseCalibration
{
    public const string Sum = "sum";
    public const string Count = "count";
    public const string Mean = "mean";
    public const string Min = "min";
    public const string Max = "max";

    public const string FewerThanK = "fewer than k devices";
    public const string BelowMinimumVolume = "below minimum volume";
    public const string FewerThanKNoisy = "noisy device count below k";

    /// <summary>Share of ε given to the noisy sum of a mean; the count gets the rest.</summary>
    public const double MeanSumShare = 0.5;

    /// <summary>Largest |bound| in units of the granularity (2^40); keeps sums and scales far from overflow.</summary>
    public const long MaxUnits = 1L << 40;

    private static readonly IReadOnlyList<NoiseComponent> NoNoise = Array.Empty<NoiseComponent>();

    /// <summary>
    /// The noisy statistics a spec releases, each with its ε share, sensitivity and scale; the ε
    /// shares add up to <see cref="ReleaseSpec.Epsilon"/>. For "mean": the sum at
    /// ε·<see cref="MeanSumShare"/> and the count at the remainder, in that order.
    /// </summary>
    public static IReadOnlyList<NoiseComponent> Plan(ReleaseSpec spec)
    {
        var aggregate = Validate(spec);
        switch (aggregate)
        {
            case Count:
                return [CountComponent(spec.Epsilon)];
            case Sum:
                return [SumComponent(spec, spec.Epsilon)];
            default:
                double sumEpsilon = spec.Epsilon * MeanSumShare;
                double countEpsilon = spec.Epsilon - sumEpsilon;
                return [SumComponent(spec, sumEpsilon), CountComponent(countEpsilon)];
        }
    }

    /// <summary>The L1 sensitivity of the sum in units of the granularity: max(|round(Lower/g)|, |round(Upper/g)|), at least 1.</summary>
    public static long SumSensitivityUnits(ReleaseSpec spec)
    {
        var (lo, hi) = BoundUnits(spec);
        return Math.Max(1, Math.Max(Math.Abs(lo), Math.Abs(hi)));
    }

    /// <summary>
    /// A value in integer units of the granularity: round(value / g), half away from zero. The division
    /// is done in decimal (each double read as its shortest round-trip decimal), so 1.25 with g = 0.1
    /// is 12.5 units and rounds to 13, where binary floating point would give 12.499999999999998.
    /// </summary>
    public static long ToUnits(double value, double granularity)
    {
        double approx = value / granularity;
        if (!double.IsFinite(approx) || Math.Abs(approx) > MaxUnits)
            throw new ArgumentOutOfRangeException(nameof(value), value,
                $"{value} is more than {MaxUnits} units of granularity {granularity}");
        if (!DecimalSafe(value) || !DecimalSafe(granularity))
            return (long)Math.Round(approx, MidpointRounding.AwayFromZero);
        decimal exact = ToDecimal(value) / ToDecimal(granularity);
        return (long)Math.Round(exact, MidpointRounding.AwayFromZero);
    }

    /// <summary>Units back to a value, multiplied in decimal so 1234 units of 0.1 read 123.4, not 123.40000000000001.</summary>
    public static double FromUnits(long units, double granularity) =>
        DecimalSafe(granularity) && DecimalSafe(units * granularity)
            ? (double)(units * ToDecimal(granularity))
            : units * granularity;

    /// <summary>Magnitudes for which the decimal paths cannot overflow or lose the value.</summary>
    private static bool DecimalSafe(double value) => value == 0 || (Math.Abs(value) >= 1e-20 && Math.Abs(value) <= 1e20);

    private static decimal ToDecimal(double value) =>
        decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>Releases one cell with noise from the operating system's CSPRNG. See the type's remarks.</summary>
    public static NoisyRelease Release(IReadOnlyList<double> perDeviceValues, ReleaseSpec spec) =>
        Release(perDeviceValues, spec, CryptoRandomSource.ForCurrentThread);

    /// <summary><see cref="Release(IReadOnlyList{double}, ReleaseSpec)"/> drawing from <paramref name="source"/>: the sum's noise first, then the count's.</summary>
    internal static NoisyRelease Release(IReadOnlyList<double> perDeviceValues, ReleaseSpec spec, IRandomSource source)
    {
        ArgumentNullException.ThrowIfNull(perDeviceValues);
        var plan = Plan(spec);
        var aggregate = spec.Aggregate.ToLowerInvariant();
        foreach (var v in perDeviceValues)
            if (!double.IsFinite(v)) throw new ArgumentException($"per-device value {v} is not a finite number", nameof(perDeviceValues));

        int devices = perDeviceValues.Count;
        double primaryScale = plan[0].Scale;
        if (devices < spec.MinDevices)
            return new NoisyRelease(false, FewerThanK, null, devices, 0, primaryScale, NoNoise);

        double value;
        switch (aggregate)
        {
            case Count:
            {
                long noisyCount = checked(devices + DiscreteLaplace.Sample(plan[0].Epsilon, 1, source));
                value = noisyCount;
                break;
            }
            case Sum:
            {
                long noisySum = checked(ClampedSumUnits(perDeviceValues, spec)
                    + DiscreteLaplace.Sample(plan[0].Epsilon, plan[0].SensitivityUnits, source));
                value = FromUnits(noisySum, spec.Granularity);
                break;
            }
            default:
            {
                long noisySum = checked(ClampedSumUnits(perDeviceValues, spec)
                    + DiscreteLaplace.Sample(plan[0].Epsilon, plan[0].SensitivityUnits, source));
                long noisyCount = checked(devices + DiscreteLaplace.Sample(plan[1].Epsilon, 1, source));
                var (lo, hi) = BoundUnits(spec);
                long meanUnits = (long)Math.Round((double)noisySum / Math.Max(1, noisyCount), MidpointRounding.AwayFromZero);
                meanUnits = Math.Clamp(meanUnits, lo, hi);
                value = FromUnits(meanUnits, spec.Granularity);
                break;
            }
        }

        if (spec.MinVolume is { } minVolume && value < minVolume)
            return new NoisyRelease(false, BelowMinimumVolume, null, devices, spec.Epsilon, primaryScale, plan);
        return new NoisyRelease(true, null, value, devices, spec.Epsilon, primaryScale, plan);
    }

    /// <summary>
    /// The noisy statistics a personal cell draws when the release decision itself goes through the
    /// mechanism (see <see cref="ReleaseCell(IReadOnlyList{double}, ReleaseSpec)"/>): "mean" as in
    /// <see cref="Plan"/> (sum at ε/2, count at ε/2; the noisy count also decides the threshold);
    /// "sum" as a noisy sum at ε·<see cref="MeanSumShare"/> and a noisy device count at the rest, the
    /// count used only for the threshold; "count" as one noisy count at ε. The shares add up to ε.
    /// </summary>
    public static IReadOnlyList<NoiseComponent> CellPlan(ReleaseSpec spec)
    {
        var aggregate = Validate(spec);
        if (aggregate != Sum) return Plan(spec);
        double sumEpsilon = spec.Epsilon * MeanSumShare;
        return [SumComponent(spec, sumEpsilon), CountComponent(spec.Epsilon - sumEpsilon)];
    }

    /// <summary>Releases one personal cell with noise from the operating system's CSPRNG; see the overload with a source.</summary>
    public static NoisyRelease ReleaseCell(IReadOnlyList<double> perDeviceValues, ReleaseSpec spec) =>
        ReleaseCell(perDeviceValues, spec, CryptoRandomSource.ForCurrentThread);

    /// <summary>
    /// Releases one personal cell (traffic, water) entirely through the mechanism. This is what the
    /// release job uses; unlike <see cref="Release(IReadOnlyList{double}, ReleaseSpec)"/> nothing is
    /// decided on the exact number of devices.
    ///
    /// <para><b>Rule.</b> Every noisy statistic of <see cref="CellPlan"/> is drawn, always, also for a
    /// cell with no device at all (the caller iterates over a data-independent set of districts), and
    /// the full ε is spent. The cell is released iff noisy device count ≥ k
    /// (<see cref="ReleaseSpec.MinDevices"/>) and, when set, released value ≥ minimum volume; both
    /// tests read noisy values only, so suppression is post-processing and costs nothing more. With
    /// <c>perDeviceValues</c> holding one clamped contribution per device (a device in one district
    /// per window), the cell is ε-differentially private for the addition or removal of one device's
    /// contributions in the window: the sum (Δ = max(|L|, |U|) units) and the count (Δ = 1) compose
    /// sequentially to ε. A suppressed cell reports <see cref="NoisyRelease.Devices"/> = −1: the exact
    /// count is not handed out, so it cannot be logged or released by mistake.</para>
    /// </summary>
    internal static NoisyRelease ReleaseCell(IReadOnlyList<double> perDeviceValues, ReleaseSpec spec, IRandomSource source)
    {
        ArgumentNullException.ThrowIfNull(perDeviceValues);
        var plan = CellPlan(spec);
        var aggregate = spec.Aggregate.ToLowerInvariant();
        foreach (var v in perDeviceValues)
            if (!double.IsFinite(v)) throw new ArgumentException($"per-device value {v} is not a finite number", nameof(perDeviceValues));

        int devices = perDeviceValues.Count;
        long noisyCount;
        double value;
        switch (aggregate)
        {
            case Count:
                noisyCount = checked(devices + DiscreteLaplace.Sample(plan[0].Epsilon, 1, source));
                value = noisyCount;
                break;
            case Sum:
            {
                long noisySum = checked(ClampedSumUnits(perDeviceValues, spec)
                    + DiscreteLaplace.Sample(plan[0].Epsilon, plan[0].SensitivityUnits, source));
                noisyCount = checked(devices + DiscreteLaplace.Sample(plan[1].Epsilon, 1, source));
                value = FromUnits(noisySum, spec.Granularity);
                break;
            }
            default:
            {
                long noisySum = checked(ClampedSumUnits(perDeviceValues, spec)
                    + DiscreteLaplace.Sample(plan[0].Epsilon, plan[0].SensitivityUnits, source));
                noisyCount = checked(devices + DiscreteLaplace.Sample(plan[1].Epsilon, 1, source));
                var (lo, hi) = BoundUnits(spec);
                long meanUnits = (long)Math.Round((double)noisySum / Math.Max(1, noisyCount), MidpointRounding.AwayFromZero);
                value = FromUnits(Math.Clamp(meanUnits, lo, hi), spec.Granularity);
                break;
            }
        }
        if (noisyCount < spec.MinDevices)
            return new NoisyRelease(false, FewerThanKNoisy, null, -1, spec.Epsilon, plan[0].Scale, plan);
        if (spec.MinVolume is { } minVolume && value < minVolume)
            return new NoisyRelease(false, BelowMinimumVolume, null, -1, spec.Epsilon, plan[0].Scale, plan);
        return new NoisyRelease(true, null, value, -1, spec.Epsilon, plan[0].Scale, plan);
    }

    /// <summary>
    /// A release without noise, for metrics that are not personal (air quality, noise levels,
    /// temperature): "mean", "min", "max", "sum" or "count" of the values as given, suppressed when
    /// fewer than <paramref name="minDevices"/> (≥ 1) devices contributed. Costs no ε.
    /// </summary>
    public static NoisyRelease ExactRelease(IReadOnlyList<double> perDeviceValues, string aggregate, int minDevices)
    {
        ArgumentNullException.ThrowIfNull(perDeviceValues);
        ArgumentNullException.ThrowIfNull(aggregate);
        if (minDevices < 1) throw new ArgumentOutOfRangeException(nameof(minDevices), minDevices, "k must be at least 1");
        var name = aggregate.ToLowerInvariant();
        if (name is not (Mean or Min or Max or Sum or Count))
            throw new ArgumentException($"unknown aggregate '{aggregate}' (mean, min, max, sum or count)", nameof(aggregate));
        foreach (var v in perDeviceValues)
            if (!double.IsFinite(v)) throw new ArgumentException($"per-device value {v} is not a finite number", nameof(perDeviceValues));

        int devices = perDeviceValues.Count;
        if (devices < minDevices) return new NoisyRelease(false, FewerThanK, null, devices, 0, 0, NoNoise);
        double value = name switch
        {
            Count => devices,
            Sum => perDeviceValues.Sum(),
            Mean => perDeviceValues.Average(),
            Min => perDeviceValues.Min(),
            _ => perDeviceValues.Max(),
        };
        return new NoisyRelease(true, null, value, devices, 0, 0, NoNoise);
    }

    /// <summary>Σ clamp(round(v/g), L, U) in units of g.</summary>
    internal static long ClampedSumUnits(IReadOnlyList<double> perDeviceValues, ReleaseSpec spec)
    {
        var (lo, hi) = BoundUnits(spec);
        long sum = 0;
        foreach (var v in perDeviceValues)
        {
            // Clamp in value space first so an absurd reading cannot overflow the unit conversion.
            double clamped = Math.Clamp(v, spec.Lower, spec.Upper);
            long units = Math.Clamp(ToUnits(clamped, spec.Granularity), lo, hi);
            sum = checked(sum + units);
        }
        return sum;
    }

    private static (long Lower, long Upper) BoundUnits(ReleaseSpec spec) =>
        (ToUnits(spec.Lower, spec.Granularity), ToUnits(spec.Upper, spec.Granularity));

    private static NoiseComponent SumComponent(ReleaseSpec spec, double epsilon)
    {
        long units = SumSensitivityUnits(spec);
        CheckScale(units, epsilon);
        return new NoiseComponent(Sum, epsilon, units, FromUnits(units, spec.Granularity), units / epsilon * spec.Granularity);
    }

    private static NoiseComponent CountComponent(double epsilon)
    {
        CheckScale(1, epsilon);
        return new NoiseComponent(Count, epsilon, 1, 1, 1 / epsilon);
    }

    private static void CheckScale(long sensitivityUnits, double epsilon)
    {
        if (sensitivityUnits / epsilon > DiscreteLaplace.MaxScale)
            throw new ArgumentException(
                $"ε {epsilon.ToString(CultureInfo.InvariantCulture)} is too small for sensitivity {sensitivityUnits}: " +
                $"the noise scale would exceed {DiscreteLaplace.MaxScale}", "spec");
    }

    private static string Validate(ReleaseSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var aggregate = spec.Aggregate?.ToLowerInvariant();
        if (aggregate is not (Sum or Count or Mean))
            throw new ArgumentException($"unknown aggregate '{spec.Aggregate}' for a noisy release (sum, count or mean)", nameof(spec));
        if (!double.IsFinite(spec.Epsilon) || spec.Epsilon <= 0)
            throw new ArgumentException($"ε must be a positive finite number, not {spec.Epsilon.ToString(CultureInfo.InvariantCulture)}", nameof(spec));
        if (spec.MinDevices < 0)
            throw new ArgumentException($"k (MinDevices) must not be negative, not {spec.MinDevices}", nameof(spec));
        if (spec.MinVolume is { } mv && double.IsNaN(mv))
            throw new ArgumentException("the minimum volume must be a number", nameof(spec));
        if (aggregate == Count) return aggregate;

        if (!double.IsFinite(spec.Granularity) || spec.Granularity <= 0)
            throw new ArgumentException($"the granularity must be a positive finite number, not {spec.Granularity.ToString(CultureInfo.InvariantCulture)}", nameof(spec));
        if (!double.IsFinite(spec.Lower) || !double.IsFinite(spec.Upper) || spec.Lower > spec.Upper)
            throw new ArgumentException($"the clamping bounds [{spec.Lower.ToString(CultureInfo.InvariantCulture)}, {spec.Upper.ToString(CultureInfo.InvariantCulture)}] are not an interval", nameof(spec));
        BoundUnits(spec);   // throws when the bounds are too many units of g
        return aggregate;
    }
}
