using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using CityGateway.Normalisation;

namespace CityGateway.Exchange;

/// <summary>
/// A data-sharing agreement with one partner city, read from its own JSON file (versioned with the
/// deployment). It says which metrics of which districts are shared, at which time granularity,
/// with which aggregate and privacy policy, and the partner's privacy budget per month.
/// </summary>
public sealed class Agreement
{
    [JsonPropertyName("partner")] public PartnerInfo Partner { get; set; } = new();

    [JsonPropertyName("validFrom")] public DateTimeOffset ValidFrom { get; set; }

    [JsonPropertyName("validUntil")] public DateTimeOffset ValidUntil { get; set; }

    /// <summary>Release window, at least 15 minutes; windows are aligned to the Unix epoch (e.g. whole hours).</summary>
    [JsonPropertyName("window")] public TimeSpan Window { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long after a window ends its release waits for late data.</summary>
    [JsonPropertyName("allowedLateness")] public TimeSpan AllowedLateness { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Districts covered; ["*"] for all.</summary>
    [JsonPropertyName("districts")] public List<string> Districts { get; set; } = ["*"];

    /// <summary>Total ε per calendar month (UTC) for this partner.</summary>
    [JsonPropertyName("epsilonPerMonth")] public double EpsilonPerMonth { get; set; } = 10;

    [JsonPropertyName("metrics")] public List<SharedMetric> Metrics { get; set; } = [];

    /// <summary>File the agreement came from, and a hash of its content: releases name the version they follow.</summary>
    [JsonIgnore] public string Source { get; set; } = "";

    [JsonIgnore] public string Version { get; set; } = "";

    public bool CoversDistrict(string district) => Districts.Contains("*") || Districts.Contains(district);

    public bool ValidAt(DateTimeOffset t) => t >= ValidFrom && t < ValidUntil;
}

public sealed class PartnerInfo
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";

    [JsonPropertyName("name")] public string Name { get; set; } = "";
}

/// <summary>One shared metric and its privacy policy.</summary>
public sealed class SharedMetric
{
    [JsonPropertyName("domain")] public string Domain { get; set; } = "";

    [JsonPropertyName("metric")] public string Metric { get; set; } = "";

    /// <summary>Traffic and water: mean, sum or count (all noisy). Environment: mean or sum only (see <see cref="AgreementLoader"/>).</summary>
    [JsonPropertyName("aggregate")] public string Aggregate { get; set; } = "mean";

    /// <summary>k: a district × window cell needs at least this many contributing devices.</summary>
    [JsonPropertyName("minDevices")] public int MinDevices { get; set; } = 3;

    /// <summary>Traffic and water: per-device contribution bounds per window (clamped before aggregation).</summary>
    [JsonPropertyName("clamp")] public double[]? Clamp { get; set; }

    /// <summary>Traffic and water: values are snapped to this granularity and noised in its units.</summary>
    [JsonPropertyName("granularity")] public double Granularity { get; set; } = 1;

    /// <summary>Traffic and water: ε spent by each release of this metric.</summary>
    [JsonPropertyName("epsilon")] public double Epsilon { get; set; }

    /// <summary>Traffic and water: cells whose noisy value is below this are suppressed.</summary>
    [JsonPropertyName("minVolume")] public double? MinVolume { get; set; }

    /// <summary>Environment data is not personal: generalised and k-thresholded. Traffic counts and water
    /// consumption are: they also get clamping and calibrated noise.</summary>
    [JsonIgnore] public bool Personal => Domain is "traffic" or "water";
}

public sealed class AgreementException(string message) : Exception(message);

/// <summary>Loads and validates every agreement file (*.json) of a folder.</summary>
public static class AgreementLoader
{
    private static readonly JsonSerializerOptions Json = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static IReadOnlyList<Agreement> LoadFolder(string folder, MetricCatalog? catalog = null)
    {
        if (!Directory.Exists(folder)) throw new AgreementException($"agreements folder '{folder}' does not exist");
        var list = new List<Agreement>();
        var errors = new List<string>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.json").Order())
        {
            try { list.Add(LoadFile(file, catalog)); }
            catch (AgreementException e) { errors.Add(e.Message); }
        }
        var duplicate = list.GroupBy(a => a.Partner.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) errors.Add($"partner '{duplicate.Key}' has more than one agreement file");
        errors.AddRange(CrossAgreementErrors(list));
        if (errors.Count > 0) throw new AgreementException(string.Join("\n", errors));
        return list;
    }

    /// <summary>
    /// The rules that hold across ALL agreements of the folder, because every partner gets the same
    /// answer for a cell and partners may pool what they get:
    /// <list type="bullet">
    /// <item>One policy per (domain, metric, aggregate): window, clamp, granularity, ε, minDevices and
    /// minVolume must be identical in every agreement that shares it, since the cell is computed
    /// and noised once for all of them.</item>
    /// <item>Environment (not personal, released exactly with k devices): at most one aggregate per
    /// (domain, metric) across all agreements, because two exact aggregates of one cell determine
    /// more than either (mean and sum give the device count; with min and max, refused per file, a
    /// three-device cell is solved).</item>
    /// </list>
    /// Each error names the file, the metric and the other file it conflicts with.
    /// </summary>
    internal static IEnumerable<string> CrossAgreementErrors(IReadOnlyList<Agreement> agreements)
    {
        var policies = new Dictionary<(string, string, string), (Agreement A, SharedMetric M)>();
        var exact = new Dictionary<(string, string), (Agreement A, SharedMetric M)>();
        foreach (var a in agreements)
        {
            for (int i = 0; i < a.Metrics.Count; i++)
            {
                var m = a.Metrics[i];
                var what = $"{a.Source}: metrics[{i}] {m.Domain}.{m.Metric} '{m.Aggregate}'";
                if (policies.TryGetValue((m.Domain, m.Metric, m.Aggregate), out var first))
                {
                    if (first.A != a && PolicyDifference(first.A, first.M, a, m) is { } diff)
                        yield return $"{what}: {diff} differs from {first.A.Source}; a cell is computed once for every partner, so its privacy policy must be identical in every agreement";
                }
                else policies[(m.Domain, m.Metric, m.Aggregate)] = (a, m);
                if (m.Personal) continue;
                if (exact.TryGetValue((m.Domain, m.Metric), out var other) && other.M.Aggregate != m.Aggregate)
                    yield return $"{what}: {(other.A == a ? "this file" : other.A.Source)} already shares {m.Domain}.{m.Metric} as '{other.M.Aggregate}'; " +
                                 $"at most one aggregate per {m.Domain} metric across all agreements (two exact aggregates of a cell, e.g. mean and sum, give its device count)";
                else exact.TryAdd((m.Domain, m.Metric), (a, m));
            }
        }
    }

    private static string? PolicyDifference(Agreement a, SharedMetric m, Agreement b, SharedMetric n)
    {
        if (a.Window != b.Window) return $"window ({b.Window} against {a.Window})";
        if (m.MinDevices != n.MinDevices) return $"minDevices ({n.MinDevices} against {m.MinDevices})";
        if (!m.Personal) return null;
        if (!(m.Clamp ?? []).SequenceEqual(n.Clamp ?? [])) return "clamp";
        if (m.Granularity != n.Granularity) return $"granularity ({n.Granularity} against {m.Granularity})";
        if (m.Epsilon != n.Epsilon) return $"epsilon ({n.Epsilon} against {m.Epsilon})";
        if (m.MinVolume != n.MinVolume) return $"minVolume ({n.MinVolume} against {m.MinVolume})";
        return null;
    }

    public static Agreement LoadFile(string path, MetricCatalog? catalog = null)
    {
        catalog ??= MetricCatalog.Default;
        byte[] bytes;
        Agreement? a;
        try
        {
            bytes = File.ReadAllBytes(path);
            a = JsonSerializer.Deserialize<Agreement>(bytes, Json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new AgreementException($"{path}: {e.Message}");
        }
        if (a is null) throw new AgreementException($"{path}: empty");
        a.Source = path;
        a.Version = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(a.Partner.Id) || a.Partner.Id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            errors.Add("partner.id: missing, or not made of letters, digits, '-' and '_'");
        if (a.ValidUntil <= a.ValidFrom) errors.Add("validUntil: must be after validFrom");
        if (a.Window < TimeSpan.FromMinutes(15)) errors.Add($"window: {a.Window} is shorter than 15 minutes");
        if (TimeSpan.FromDays(1).Ticks % a.Window.Ticks != 0) errors.Add($"window: {a.Window} does not divide a day");
        if (a.AllowedLateness < TimeSpan.Zero) errors.Add("allowedLateness: negative");
        if (a.EpsilonPerMonth <= 0) errors.Add("epsilonPerMonth: must be positive");
        if (a.Metrics.Count == 0) errors.Add("metrics: nothing is shared");
        for (int i = 0; i < a.Metrics.Count; i++)
        {
            var m = a.Metrics[i];
            var key = $"metrics[{i}]";
            if (!catalog.TryGet(m.Domain, m.Metric, out _)) { errors.Add($"{key}: '{m.Domain}.{m.Metric}' is not a canonical metric"); continue; }
            if (m.MinDevices < 2) errors.Add($"{key}.minDevices: at least 2 (a single device is never shared)");
            if (m.Personal)
            {
                if (m.Aggregate is not ("sum" or "mean" or "count")) errors.Add($"{key}.aggregate: {m.Domain} metrics allow sum, mean or count only");
                if (m.Clamp is not { Length: 2 } || !(m.Clamp[0] < m.Clamp[1])) errors.Add($"{key}.clamp: [lower, upper] per-device bounds are required for {m.Domain}");
                if (!(m.Epsilon > 0)) errors.Add($"{key}.epsilon: a positive ε is required for {m.Domain}");
                if (!(m.Granularity > 0)) errors.Add($"{key}.granularity: must be positive");
                if (m.MinVolume is null) errors.Add($"{key}.minVolume: required for {m.Domain} (cells below it are suppressed)");
            }
            else if (m.Aggregate is "min" or "max")
                errors.Add($"{key}.aggregate: '{m.Aggregate}' of {m.Domain}.{m.Metric} is refused: a minimum or maximum is one device's reading");
            else if (m.Aggregate is "count")
                errors.Add($"{key}.aggregate: 'count' of {m.Domain}.{m.Metric} is refused: an exact count is a device or reading count");
            else if (m.Aggregate is not ("mean" or "sum"))
                errors.Add($"{key}.aggregate: '{m.Aggregate}' of {m.Domain}.{m.Metric} is not mean or sum (the aggregates allowed for {m.Domain})");
            for (int j = 0; j < i; j++)
                if (a.Metrics[j].Domain == m.Domain && a.Metrics[j].Metric == m.Metric && a.Metrics[j].Aggregate == m.Aggregate)
                    errors.Add($"{key}: {m.Domain}.{m.Metric} '{m.Aggregate}' is listed twice (also metrics[{j}])");
        }
        if (errors.Count > 0) throw new AgreementException($"{path}: " + string.Join("; ", errors));
        return a;
    }
}
