using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Audit;

/// <summary>What the audit log says about one partner city.</summary>
/// <param name="Releases">Entries of kind "release" for the partner.</param>
/// <param name="RowsReleased">Sum of <c>data.rows</c> over its releases.</param>
/// <param name="EpsilonSpent">Sum of <c>data.epsilon</c> (differential-privacy budget) over its releases, summed exactly in decimal.</param>
/// <param name="Pulls">Entries of kind "pull" for the partner.</param>
/// <param name="FirstTime">Time of its first entry of any kind.</param>
/// <param name="LastTime">Time of its last entry of any kind.</param>
/// <param name="LastRelease">Time of its last release, null before the first.</param>
/// <param name="LastPull">Time of its last pull, null before the first.</param>
/// <param name="Recent">Its last releases (at most <see cref="TransparencySummary.RecentReleases"/>), oldest first, each with when it was first pulled.</param>
public sealed record PartnerTransparency(
    string Partner, int Releases, long RowsReleased, decimal EpsilonSpent, int Pulls,
    DateTimeOffset FirstTime, DateTimeOffset LastTime,
    DateTimeOffset? LastRelease = null, DateTimeOffset? LastPull = null, IReadOnlyList<ReleaseEvent>? Recent = null);

/// <summary>One release as the audit log tells it: its feed sequence, window, rows, ε, when it was made and when the partner first received it.</summary>
/// <param name="FirstPulled">Time of the first pull with status 200 whose page held this sequence (the pull's <c>since</c> cursor and release count say which); null while not pulled.</param>
public sealed record ReleaseEvent(long Sequence, DateTimeOffset? WindowStart, long Rows, decimal Epsilon, DateTimeOffset Released, DateTimeOffset? FirstPulled);

/// <summary>
/// The per-partner totals of an audit log (<see cref="AuditLog.Summarise"/>), counted over the
/// entries that verify only. <see cref="Verification"/> says whether that is the whole log.
/// </summary>
/// <param name="Partners">Sorted by partner name (ordinal).</param>
/// <param name="EntriesWithoutPartner">Verified entries with no string <c>data.partner</c>.</param>
/// <param name="Warnings">Releases whose rows or ε are missing or not valid numbers (counted as 0), by line.</param>
public sealed record TransparencySummary(
    AuditVerification Verification, IReadOnlyList<PartnerTransparency> Partners,
    long EntriesWithoutPartner, IReadOnlyList<string> Warnings)
{
    public const string ReleaseKind = "release";
    public const string PullKind = "pull";

    /// <summary>Releases kept per partner in <see cref="PartnerTransparency.Recent"/>: the summary's memory does not grow with the log.</summary>
    public const int RecentReleases = 24;

    /// <summary>The summary as JSON, for an operator endpoint or <c>--json</c>.</summary>
    public JsonObject ToJson()
    {
        var partners = new JsonArray();
        foreach (var p in Partners)
        {
            partners.Add(new JsonObject
            {
                ["partner"] = p.Partner,
                ["releases"] = p.Releases,
                ["rowsReleased"] = p.RowsReleased,
                ["epsilonSpent"] = p.EpsilonSpent,
                ["pulls"] = p.Pulls,
                ["firstTime"] = p.FirstTime.UtcDateTime.ToString(AuditLog.TimeFormat, CultureInfo.InvariantCulture),
                ["lastTime"] = p.LastTime.UtcDateTime.ToString(AuditLog.TimeFormat, CultureInfo.InvariantCulture),
                ["lastRelease"] = Time(p.LastRelease),
                ["lastPull"] = Time(p.LastPull),
            });
        }
        return new JsonObject
        {
            ["intact"] = Verification.Ok,
            ["entries"] = Verification.Entries,
            ["head"] = Verification.Head.ToString(),
            ["firstBreak"] = Verification.FirstBreak?.ToString(),
            ["partners"] = partners,
            ["entriesWithoutPartner"] = EntriesWithoutPartner,
            ["warnings"] = new JsonArray(Warnings.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray()),
        };
    }

    private static string? Time(DateTimeOffset? t) => t?.UtcDateTime.ToString(AuditLog.TimeFormat, CultureInfo.InvariantCulture);

    /// <summary>A plain-text table for the console.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.AppendLine(Verification.Ok
            ? $"audit log intact: {Verification.Entries} entries, head {Verification.Head}"
            : $"audit log BROKEN at {Verification.FirstBreak}; the totals cover the {Verification.Entries} entries before it");
        if (Partners.Count == 0)
        {
            sb.AppendLine("no releases or pulls");
        }
        else
        {
            var rows = new List<string[]> { new[] { "partner", "releases", "rows", "epsilon", "pulls", "first", "last" } };
            foreach (var p in Partners)
            {
                rows.Add([
                    p.Partner,
                    p.Releases.ToString(CultureInfo.InvariantCulture),
                    p.RowsReleased.ToString(CultureInfo.InvariantCulture),
                    p.EpsilonSpent.ToString(CultureInfo.InvariantCulture),
                    p.Pulls.ToString(CultureInfo.InvariantCulture),
                    p.FirstTime.UtcDateTime.ToString(AuditLog.TimeFormat, CultureInfo.InvariantCulture),
                    p.LastTime.UtcDateTime.ToString(AuditLog.TimeFormat, CultureInfo.InvariantCulture),
                ]);
            }
            var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
            foreach (var r in rows)
            {
                for (int c = 0; c < r.Length; c++)
                {
                    // Text left-aligned, numbers right-aligned.
                    bool numeric = c is >= 1 and <= 4;
                    var cell = numeric ? r[c].PadLeft(widths[c]) : r[c].PadRight(widths[c]);
                    sb.Append(c == 0 ? "" : "  ").Append(c == r.Length - 1 ? cell.TrimEnd() : cell);
                }
                sb.AppendLine();
            }
        }
        if (EntriesWithoutPartner > 0) sb.AppendLine($"entries without a partner: {EntriesWithoutPartner}");
        foreach (var w in Warnings) sb.AppendLine("warning: " + w);
        return sb.ToString();
    }

    internal sealed class Builder
    {
        /// <summary>Without trailing zeros: 0.25 + 0.25 is shown as 0.5, not 0.50.</summary>
        private static decimal Normalise(decimal d) => d / 1.000000000000000000000000000000000m;

        private sealed class Totals
        {
            public int Releases, Pulls;
            public long Rows;
            public decimal Epsilon;
            public DateTimeOffset First = DateTimeOffset.MaxValue, Last = DateTimeOffset.MinValue;
            public DateTimeOffset? LastRelease, LastPull;
            public readonly Queue<ReleaseEvent> Recent = new();
        }

        private readonly Dictionary<string, Totals> _partners = new(StringComparer.Ordinal);
        private readonly List<string> _warnings = [];
        private long _withoutPartner;

        /// <summary>One verified entry (its shape is already checked).</summary>
        public void Add(long line, JsonElement entry)
        {
            var kind = entry.GetProperty("kind").GetString();
            var data = entry.GetProperty("data");
            if (!data.TryGetProperty("partner", out var partnerEl) || partnerEl.ValueKind != JsonValueKind.String)
            {
                _withoutPartner++;
                if (kind is ReleaseKind or PullKind) _warnings.Add($"line {line}: {kind} without a string data.partner");
                return;
            }
            var partner = partnerEl.GetString()!;
            if (!_partners.TryGetValue(partner, out var t)) _partners[partner] = t = new Totals();
            var time = DateTimeOffset.ParseExact(entry.GetProperty("time").GetString()!, AuditLog.TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
            if (time < t.First) t.First = time;
            if (time > t.Last) t.Last = time;

            if (kind == ReleaseKind)
            {
                t.Releases++;
                if (data.TryGetProperty("rows", out var rows) && rows.ValueKind == JsonValueKind.Number && rows.TryGetInt64(out var r) && r >= 0)
                    t.Rows += r;
                else
                    _warnings.Add($"line {line}: release to {partner} without a non-negative integer data.rows");
                if (data.TryGetProperty("epsilon", out var eps) && eps.ValueKind == JsonValueKind.Number && eps.TryGetDecimal(out var e) && e >= 0)
                    t.Epsilon += e;
                else
                    _warnings.Add($"line {line}: release to {partner} without a non-negative number data.epsilon");
                t.LastRelease = time;
                if (Long(data, "sequence") is { } sequence)
                {
                    DateTimeOffset? window = data.TryGetProperty("windowStart", out var w) && w.ValueKind == JsonValueKind.String
                        && DateTimeOffset.TryParse(w.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var ws) ? ws : null;
                    t.Recent.Enqueue(new ReleaseEvent(sequence, window, Math.Max(0, Long(data, "rows") ?? 0),
                        eps.ValueKind == JsonValueKind.Number && eps.TryGetDecimal(out var ed) ? Normalise(ed) : 0, time, null));
                    if (t.Recent.Count > RecentReleases) t.Recent.Dequeue();
                }
            }
            else if (kind == PullKind)
            {
                t.Pulls++;
                t.LastPull = time;
                MarkPulled(t, data, time);
            }
        }

        private static long? Long(JsonElement data, string name) =>
            data.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;

        /// <summary>A pull answered 200 with <c>releases</c> releases after its <c>since</c> cursor ("sN", or none for the start) delivered sequences N+1 … N+releases.</summary>
        private static void MarkPulled(Totals t, JsonElement data, DateTimeOffset time)
        {
            if (t.Recent.Count == 0 || Long(data, "status") is not 200 || Long(data, "releases") is not { } count || count <= 0) return;
            long after = 0;
            if (data.TryGetProperty("since", out var since) && since.ValueKind == JsonValueKind.String)
            {
                var text = since.GetString()!;
                if (text.Length < 2 || text[0] != 's' || !long.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out after)) return;
            }
            var events = t.Recent.ToArray();
            t.Recent.Clear();
            foreach (var e in events)
                t.Recent.Enqueue(e.FirstPulled is null && e.Sequence > after && e.Sequence <= after + count ? e with { FirstPulled = time } : e);
        }

        public TransparencySummary Build(AuditVerification verification) => new(
            verification,
            _partners.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => new PartnerTransparency(p.Key, p.Value.Releases, p.Value.Rows, Normalise(p.Value.Epsilon), p.Value.Pulls, p.Value.First, p.Value.Last,
                    p.Value.LastRelease, p.Value.LastPull, p.Value.Recent.ToList()))
                .ToList(),
            _withoutPartner,
            _warnings);
    }
}
