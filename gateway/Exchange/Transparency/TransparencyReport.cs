using System.Globalization;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Privacy;

namespace CityGateway.Exchange.Transparency;

/// <summary>One shared metric of an agreement and its privacy protection.</summary>
/// <param name="Noised">Traffic and water: clamped, discrete Laplace noise of <paramref name="Epsilon"/> per window. Otherwise an exact aggregate of at least <paramref name="MinDevices"/> devices.</param>
public sealed record MetricTerms(string Domain, string Metric, string Aggregate, int MinDevices, bool Noised, double? Epsilon, double? MinVolume);

/// <summary>What one partner city receives, and what it has received.</summary>
public sealed record PartnerView(
    string PartnerId, string PartnerName, DateTimeOffset ValidFrom, DateTimeOffset ValidUntil, bool InForce,
    TimeSpan Window, IReadOnlyList<string> Districts, IReadOnlyList<MetricTerms> Metrics,
    double EpsilonPerMonth, double EpsilonSpentThisMonth, int ReleasesStored, int WindowsRefused,
    PartnerTransparency? Audit);

/// <summary>The city-wide budget of one dataset this month.</summary>
public sealed record DatasetBudget(string Dataset, double Spent, double Budget);

/// <summary>The latest signed checkpoint of the audit log, and the envelope to keep.</summary>
public sealed record CheckpointView(long Seq, string Head, DateTimeOffset Time, string KeyId, string EnvelopeJson);

/// <summary>One line of a chart: one district of one city.</summary>
public sealed record ChartSeries(bool Ours, string CityId, string CityName, string District, IReadOnlyList<(DateTimeOffset Time, double Value)> Points);

/// <summary>What was released of one metric over the last days; <paramref name="OmittedSeries"/> lines were left out to keep the chart readable.</summary>
public sealed record ChartView(string Domain, string Metric, string Aggregate, IReadOnlyList<ChartSeries> Series, int OmittedSeries);

/// <summary>
/// Everything the public transparency page shows, in machine form (no language): built from the
/// agreements, the release records, the ledgers, the audit log (through <see cref="AuditLog.Summarise"/>,
/// the same totals as <c>Gateway exchange transparency</c>), the latest checkpoint and the partner
/// releases the federation client kept. It holds district-level aggregates only: no device, site or
/// coordinate is read to make it.
/// </summary>
public sealed record TransparencyReport(
    string CityId, string CityName, DateTimeOffset GeneratedAt, string Period, int ChartDays,
    IReadOnlyList<PartnerView> Partners, IReadOnlyList<DatasetBudget> CityBudget,
    bool AuditIntact, long AuditEntries, CheckpointView? Checkpoint,
    string KeyId, string PublicKeyPem, IReadOnlyList<ChartView> Charts)
{
    /// <summary>Charts drawn at most (one per shared metric).</summary>
    public const int MaxCharts = 16;
    /// <summary>Lines per chart at most (our districts first, then the partners').</summary>
    public const int MaxSeriesPerChart = 8;
    /// <summary>Points per line at most: longer lines are averaged over consecutive windows.</summary>
    public const int MaxPointsPerSeries = 168;
    /// <summary>Partner values read per partner at most (the newest).</summary>
    public const int MaxReceivedValues = 50_000;

    /// <summary>The datasets with a city-wide ε ledger (personal data).</summary>
    public static readonly string[] Datasets = ["traffic", "water"];

    public static TransparencyReport Build(ExchangeContext x, ExchangeOptions options, DateTimeOffset now)
    {
        var period = PrivacyBudgetLedger.PeriodOf(now);
        var summary = AuditLog.Summarise(x.Audit.Path);
        var partners = x.Agreements
            .OrderBy(a => a.Partner.Id, StringComparer.Ordinal)
            .Select(a => new PartnerView(
                a.Partner.Id, string.IsNullOrWhiteSpace(a.Partner.Name) ? a.Partner.Id : a.Partner.Name,
                a.ValidFrom, a.ValidUntil, a.ValidAt(now), a.Window, a.Districts,
                a.Metrics.Select(m => new MetricTerms(m.Domain, m.Metric, m.Aggregate, m.MinDevices, m.Personal,
                    m.Personal ? m.Epsilon : null, m.Personal ? m.MinVolume : null)).ToList(),
                a.EpsilonPerMonth, x.Ledger.Spent(a.Partner.Id, period), x.Releases.Count(a.Partner.Id), x.Releases.RefusedCount(a.Partner.Id),
                summary.Partners.FirstOrDefault(p => p.Partner == a.Partner.Id)))
            .ToList();
        var datasets = Datasets.Where(d => x.Agreements.Any(a => a.Metrics.Any(m => m.Domain == d)))
            .Select(d => new DatasetBudget(d, x.CityLedger.Spent(d, period), options.CityEpsilonPerMonth)).ToList();
        CheckpointView? checkpoint = null;
        if (x.Checkpoints.Latest is { } envelope && AuditCheckpoint.Parse(envelope, out _) is { } cp)
            checkpoint = new CheckpointView(cp.Seq, cp.Head, cp.Time, cp.KeyId, envelope.ToJsonString());
        return new TransparencyReport(x.CityId, string.IsNullOrWhiteSpace(x.CityName) ? x.CityId : x.CityName, now, period,
            options.Transparency.ChartDays, partners, datasets,
            // A last line without its end is the gateway's own append in progress, not damage.
            summary.Verification.Ok || summary.Verification.FirstBreak?.Problem == AuditProblem.TornLine, summary.Verification.Entries, checkpoint,
            x.Signer.KeyId, x.Signer.PublicKeyPem, BuildCharts(x, options, now));
    }

    /// <summary>
    /// One chart per shared (domain, metric, aggregate): our released values per district (a cell has
    /// one value for every partner entitled to it), and each federated partner's values of the same
    /// metric and aggregate, read from what the federation client kept (no database query).
    /// </summary>
    private static List<ChartView> BuildCharts(ExchangeContext x, ExchangeOptions options, DateTimeOffset now)
    {
        var since = now - TimeSpan.FromDays(options.Transparency.ChartDays);
        var shared = x.Agreements.SelectMany(a => a.Metrics).Select(m => (m.Domain, m.Metric, m.Aggregate)).Distinct()
            .OrderBy(k => k.Domain, StringComparer.Ordinal).ThenBy(k => k.Metric, StringComparer.Ordinal).ThenBy(k => k.Aggregate, StringComparer.Ordinal)
            .Take(MaxCharts).ToList();
        var ours = new Dictionary<(string, string, string, string), SortedDictionary<DateTimeOffset, double>>();
        foreach (var a in x.Agreements)
            foreach (var record in x.Records.For(a.Partner.Id))
            {
                if (record.WindowStart < since || record.Payload["rows"] is not JsonArray rows) continue;
                foreach (var row in rows)
                {
                    if (row is not JsonObject r || Text(r["district"]) is not { } district || Text(r["domain"]) is not { } domain
                        || Text(r["metric"]) is not { } metric || Text(r["aggregate"]) is not { } aggregate
                        || r["value"] is not JsonValue v || !v.TryGetValue<double>(out var value) || !double.IsFinite(value)) continue;
                    var key = (domain, metric, aggregate, district);
                    if (!ours.TryGetValue(key, out var line)) ours[key] = line = new();
                    line[record.WindowStart] = value;
                }
            }
        var theirs = new List<(string Id, string Name, IReadOnlyList<ReceivedValue> Values)>();
        foreach (var p in options.Partners.Where(p => !string.IsNullOrWhiteSpace(p.Id)).DistinctBy(p => p.Id))
        {
            var name = x.AgreementFor(p.Id)?.Partner.Name is { Length: > 0 } n ? n : p.Id;
            theirs.Add((p.Id, name, PartnerReleaseHistory.Read(Path.Combine(options.DataPath, "federation", p.Id), since, MaxReceivedValues)));
        }
        var charts = new List<ChartView>();
        foreach (var (domain, metric, aggregate) in shared)
        {
            var series = new List<ChartSeries>();
            foreach (var (key, line) in ours.Where(o => o.Key.Item1 == domain && o.Key.Item2 == metric && o.Key.Item3 == aggregate).OrderBy(o => o.Key.Item4, StringComparer.Ordinal))
                series.Add(new ChartSeries(true, x.CityId, string.IsNullOrWhiteSpace(x.CityName) ? x.CityId : x.CityName, key.Item4, Bound(line.Select(p => (p.Key, p.Value)).ToList())));
            foreach (var (id, name, values) in theirs)
            {
                foreach (var group in values.Where(v => v.Domain == domain && v.Metric == metric && v.Aggregate == aggregate)
                             .GroupBy(v => v.District, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
                {
                    var line = new SortedDictionary<DateTimeOffset, double>();
                    foreach (var v in group) line[v.WindowStart] = v.Value;
                    series.Add(new ChartSeries(false, id, name, group.Key, Bound(line.Select(p => (p.Key, p.Value)).ToList())));
                }
            }
            if (series.Count == 0) continue;
            // Too many lines: each city keeps at least half of them, or all it has when the other has fewer.
            int oursCount = series.Count(s => s.Ours), theirsCount = series.Count - oursCount;
            int keepOurs = Math.Min(oursCount, Math.Max(MaxSeriesPerChart / 2, MaxSeriesPerChart - theirsCount));
            int keepTheirs = Math.Min(theirsCount, MaxSeriesPerChart - keepOurs);
            var kept = series.Where(s => s.Ours).Take(keepOurs).Concat(series.Where(s => !s.Ours).Take(keepTheirs)).ToList();
            charts.Add(new ChartView(domain, metric, aggregate, kept, series.Count - kept.Count));
        }
        return charts;
    }

    /// <summary>At most <see cref="MaxPointsPerSeries"/> points: consecutive windows averaged (time and value) when there are more.</summary>
    internal static IReadOnlyList<(DateTimeOffset Time, double Value)> Bound(IReadOnlyList<(DateTimeOffset Time, double Value)> points)
    {
        if (points.Count <= MaxPointsPerSeries) return points;
        int per = (points.Count + MaxPointsPerSeries - 1) / MaxPointsPerSeries;
        var bounded = new List<(DateTimeOffset, double)>(MaxPointsPerSeries);
        for (int i = 0; i < points.Count; i += per)
        {
            var chunk = points.Skip(i).Take(per).ToList();
            var ticks = (long)chunk.Average(p => (double)p.Time.UtcTicks);
            bounded.Add((new DateTimeOffset(ticks, TimeSpan.Zero), chunk.Average(p => p.Value)));
        }
        return bounded;
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
    private static string? Iso(DateTimeOffset? t) => t is { } v ? Iso(v) : null;

    /// <summary>The report for machines: the same content as the page, no language.</summary>
    public JsonObject ToJson(string htmlUrl) => new()
    {
        ["city"] = new JsonObject { ["id"] = CityId, ["name"] = CityName },
        ["generatedAt"] = Iso(GeneratedAt),
        ["page"] = htmlUrl,
        ["period"] = Period,
        ["partners"] = new JsonArray(Partners.Select(p => (JsonNode)new JsonObject
        {
            ["id"] = p.PartnerId,
            ["name"] = p.PartnerName,
            ["validFrom"] = Iso(p.ValidFrom),
            ["validUntil"] = Iso(p.ValidUntil),
            ["inForce"] = p.InForce,
            ["window"] = p.Window.ToString("c", CultureInfo.InvariantCulture),
            ["districts"] = new JsonArray(p.Districts.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
            ["metrics"] = new JsonArray(p.Metrics.Select(m => (JsonNode)new JsonObject
            {
                ["domain"] = m.Domain, ["metric"] = m.Metric, ["aggregate"] = m.Aggregate, ["minDevices"] = m.MinDevices,
                ["protection"] = m.Noised ? "differential-privacy" : "k-threshold",
                ["epsilonPerWindow"] = m.Epsilon, ["minVolume"] = m.MinVolume,
            }).ToArray()),
            ["budget"] = new JsonObject
            {
                ["epsilonPerMonth"] = p.EpsilonPerMonth, ["spent"] = p.EpsilonSpentThisMonth,
                ["remaining"] = Math.Max(0, p.EpsilonPerMonth - p.EpsilonSpentThisMonth),
            },
            ["releasesStored"] = p.ReleasesStored,
            ["windowsRefusedForBudget"] = p.WindowsRefused,
            ["audit"] = p.Audit is not { } a ? null : new JsonObject
            {
                ["releases"] = a.Releases, ["rowsReleased"] = a.RowsReleased, ["epsilonSpent"] = a.EpsilonSpent, ["pulls"] = a.Pulls,
                ["lastRelease"] = Iso(a.LastRelease), ["lastPull"] = Iso(a.LastPull),
                ["recent"] = new JsonArray((a.Recent ?? []).Select(r => (JsonNode)new JsonObject
                {
                    ["sequence"] = r.Sequence, ["windowStart"] = Iso(r.WindowStart), ["rows"] = r.Rows, ["epsilon"] = r.Epsilon,
                    ["released"] = Iso(r.Released), ["firstPulled"] = Iso(r.FirstPulled),
                }).ToArray()),
            },
        }).ToArray()),
        ["cityBudget"] = new JsonArray(CityBudget.Select(b => (JsonNode)new JsonObject
        {
            ["dataset"] = b.Dataset, ["epsilonPerMonth"] = b.Budget, ["spent"] = b.Spent, ["remaining"] = Math.Max(0, b.Budget - b.Spent),
        }).ToArray()),
        ["audit"] = new JsonObject
        {
            ["intact"] = AuditIntact,
            ["entries"] = AuditEntries,
            ["checkpoint"] = Checkpoint is null ? null : JsonNode.Parse(Checkpoint.EnvelopeJson),
            ["verify"] = "Gateway exchange verify-audit --file audit.jsonl --checkpoint checkpoint.json --public-key city-key.pem",
        },
        ["signingKey"] = new JsonObject { ["keyId"] = KeyId, ["algorithm"] = "ES256", ["publicKey"] = PublicKeyPem },
        ["charts"] = new JsonObject
        {
            ["days"] = ChartDays,
            ["metrics"] = new JsonArray(Charts.Select(c => (JsonNode)new JsonObject
            {
                ["domain"] = c.Domain, ["metric"] = c.Metric, ["aggregate"] = c.Aggregate, ["omittedSeries"] = c.OmittedSeries,
                ["series"] = new JsonArray(c.Series.Select(s => (JsonNode)new JsonObject
                {
                    ["city"] = s.CityId, ["ours"] = s.Ours, ["district"] = s.District,
                    ["points"] = new JsonArray(s.Points.Select(p => (JsonNode)new JsonArray(Iso(p.Time), p.Value)).ToArray()),
                }).ToArray()),
            }).ToArray()),
        },
    };
}
