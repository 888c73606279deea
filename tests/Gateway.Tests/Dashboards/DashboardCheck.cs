using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Dashboards;

/// <summary>One query of a dashboard or alert rule, before Grafana's macros are expanded.</summary>
/// <param name="Kind">variable, panel or alert.</param>
/// <param name="Title">The variable's name, the panel's title as written in the JSON, or the alert rule's title.</param>
/// <param name="RefId">The target's refId (variables: the variable name).</param>
/// <param name="Range">The relative range the query runs over (the dashboard's, a panel's timeFrom, a rule's relativeTimeRange).</param>
/// <param name="Repeat">For a panel repeated by a variable: that variable and the one value this run uses.</param>
public sealed record DashboardQuery(string File, string Kind, string Title, string RefId, string Query, string Range, (string Variable, string Value)? Repeat = null)
{
    public override string ToString() =>
        $"{File} / {(Kind == "variable" ? "$" + Title : Title)}{(Repeat is { } r ? $" [{r.Variable}={r.Value}]" : "")}{(Kind == "variable" ? "" : $" (refId {RefId})")}";
}

/// <summary>What one query returned.</summary>
/// <param name="Expanded">The InfluxQL sent, after macro expansion.</param>
/// <param name="Series">Series that hold at least one value (variables: distinct values).</param>
/// <param name="Error">The query's error, when it failed.</param>
/// <param name="Excuse">Why an empty answer is not a failure: an entry of dashboards/README.md's "Empty when all is well",
/// or a reason the caller gave in <see cref="DashboardCheckOptions.NotApplicable"/>.</param>
public sealed record QueryOutcome(DashboardQuery Query, string Expanded, int Series, string? Error, string? Excuse)
{
    public bool HasData => Error is null && Series > 0;

    public bool Failed => !HasData && Excuse is null;
}

public sealed class DashboardCheckOptions
{
    /// <summary>Grafana's $__interval; default: the range over 1000 points, rounded as Grafana rounds it, at least the data
    /// source's timeInterval (5s).</summary>
    public string? Interval { get; init; }

    /// <summary>Files to check, by name ("exchange.json", "city-alerts.yaml"); default all dashboards and the alert rules.</summary>
    public IReadOnlyCollection<string>? Files { get; init; }

    /// <summary>
    /// Queries that cannot have data in the stack checked, with the reason, e.g.
    /// <c>["gateway-health.json / Serial ports open"] = "no serial port in this stack"</c>. Key: "file / Title" (every
    /// target of the panel) or "file / Title (refId A)". A key that matches no query is reported as unmatched.
    /// </summary>
    public Dictionary<string, string> NotApplicable { get; init; } = [];

    /// <summary>
    /// True (default): queries listed in dashboards/README.md, "Empty when all is well", may be empty. False: every
    /// query must return data (a data set that drives every unhealthy condition too).
    /// </summary>
    public bool ExcuseExpectedEmpty { get; init; } = true;

    /// <summary>dashboards/README.md by default.</summary>
    public string? ReadmePath { get; init; }

    /// <summary>Authentication or API version for the InfluxDB queried (Token, Username/Password, Version).</summary>
    public Action<InfluxOptions>? ConfigureInflux { get; init; }
}

/// <summary>The outcome of <see cref="DashboardCheck.RunAsync"/>: every query run, and what is wrong.</summary>
public sealed class DashboardCheckResult
{
    public required Uri Influx { get; init; }
    public required string Database { get; init; }
    public required string Range { get; init; }
    public required string Interval { get; init; }
    public required IReadOnlyList<QueryOutcome> Outcomes { get; init; }

    /// <summary>Values each variable took, per file (what "All" expands to in later queries).</summary>
    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<string>>> Variables { get; init; }

    /// <summary>README entries and <see cref="DashboardCheckOptions.NotApplicable"/> keys that name no query of the files checked.</summary>
    public required IReadOnlyList<string> Unmatched { get; init; }

    /// <summary>Queries that returned no data or failed, and are not excused.</summary>
    public IReadOnlyList<QueryOutcome> Failures => [.. Outcomes.Where(o => o.Failed)];

    /// <summary>Queries that were empty and are excused (README's healthy-empty list, or not applicable here).</summary>
    public IReadOnlyList<QueryOutcome> Excused => [.. Outcomes.Where(o => !o.HasData && o.Excuse is not null)];

    public bool Ok => Failures.Count == 0 && Unmatched.Count == 0;

    public int Count(string kind) => Outcomes.Count(o => o.Query.Kind == kind);

    /// <summary>Counts, then each failing query with its error and the InfluxQL sent, then the excused ones.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"Dashboard check of database \"{Database}\" at {Influx} over the last {Range} ($__interval {Interval}): ")
          .Append(CultureInfo.InvariantCulture, $"{Outcomes.Count} queries ({Count("variable")} variable, {Count("panel")} panel, {Count("alert")} alert rule), ")
          .Append(CultureInfo.InvariantCulture, $"{Outcomes.Count(o => o.HasData)} with data, {Failures.Count} failing, {Excused.Count} empty as expected, {Unmatched.Count} unmatched entries.\n");
        foreach (var f in Failures)
            sb.Append(CultureInfo.InvariantCulture, $"  FAIL {f.Query}: {f.Error ?? "no data"}\n       {f.Expanded}\n");
        foreach (var u in Unmatched)
            sb.Append(CultureInfo.InvariantCulture, $"  UNMATCHED {u}\n");
        foreach (var e in Excused)
            sb.Append(CultureInfo.InvariantCulture, $"  empty {e.Query}: {e.Excuse}\n");
        return sb.ToString();
    }

    public override string ToString() => Summary();
}

/// <summary>
/// Runs every template-variable query and every panel query of every dashboard under dashboards/, and every
/// alert rule's query, against an InfluxDB database, with Grafana's InfluxQL macros expanded as Grafana does
/// with "All" selected ($timeFilter for "now-range to now", $__interval, variables as regular-expression
/// alternations, repeated panels once per value), and reports those that return no data or fail. Queries that
/// dashboards/README.md lists under "Empty when all is well" are excused when empty; an entry there that names
/// no query is itself reported, so the list and the dashboards cannot drift apart.
/// </summary>
/// <example><code>
/// var result = await DashboardCheck.RunAsync(new Uri("http://127.0.0.1:8086"), "city");
/// Assert.True(result.Ok, result.Summary());
/// </code></example>
public static class DashboardCheck
{
    public static async Task<DashboardCheckResult> RunAsync(Uri influx, string database, string range = "3h",
        DashboardCheckOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(influx);
        ArgumentException.ThrowIfNullOrWhiteSpace(database);
        options ??= new DashboardCheckOptions();
        DashboardFiles.ParseDuration(range); // a clear error for "3 hours"
        var interval = options.Interval ?? GrafanaInterval(DashboardFiles.ParseDuration(range));
        var expectedEmpty = options.ExcuseExpectedEmpty ? DashboardFiles.ExpectedEmptyQueries(options.ReadmePath) : [];
        bool Wanted(string file) => options.Files is null || options.Files.Contains(file);
        if (options.Files is { } files)
            foreach (var f in files)
                if (f != DashboardFiles.AlertsFile && !File.Exists(Path.Combine(DashboardFiles.Folder, f)))
                    throw new ArgumentException($"no dashboard {f} in {DashboardFiles.Folder}", nameof(options));

        var influxOptions = new InfluxOptions { Url = influx.ToString().TrimEnd('/'), Database = database, Gzip = false, CreateDatabase = false };
        options.ConfigureInflux?.Invoke(influxOptions);
        using var client = new InfluxClient(influxOptions);

        var outcomes = new List<QueryOutcome>();
        var usedExcuses = new HashSet<string>();
        var allVariables = new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<string>>>();

        string? Excuse(DashboardQuery q)
        {
            var full = $"{q.File} / {q.Title} (refId {q.RefId})";
            var panel = $"{q.File} / {q.Title}";
            foreach (var e in expectedEmpty)
                if (e.Key == full) { usedExcuses.Add("readme:" + e.Key); return "README: " + e.Reason; }
            foreach (var (key, why) in options.NotApplicable)
                if (key == full || key == panel) { usedExcuses.Add("option:" + key); return "not applicable: " + why; }
            return null;
        }

        async Task<QueryOutcome> Run(DashboardQuery q, IReadOnlyDictionary<string, IReadOnlyList<string>> values, Func<JsonElement, int> count)
        {
            var expanded = DashboardFiles.Expand(q.Query, $"time >= now() - {q.Range}", interval, values);
            try
            {
                using var doc = await client.QueryAsync(expanded, database, ct);
                return new QueryOutcome(q, expanded, count(doc.RootElement.GetProperty("results")[0]), null, Excuse(q));
            }
            catch (Exception e) when (e is InfluxQueryException or HttpRequestException or JsonException
                                      || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                return new QueryOutcome(q, expanded, 0, e.Message, Excuse(q));
            }
        }

        foreach (var path in DashboardFiles.DashboardPaths())
        {
            var file = Path.GetFileName(path);
            if (!Wanted(file)) continue;
            using var doc = DashboardFiles.Load(path);
            var d = doc.RootElement;
            var dashboardRange = range; // the caller's range replaces the dashboard's default, as a user picking it would

            // Variables in order: each is rendered into later ones as Grafana does with "All" selected.
            var values = new Dictionary<string, IReadOnlyList<string>>();
            allVariables[file] = values;
            foreach (var v in DashboardFiles.Variables(d))
            {
                var name = v.GetProperty("name").GetString()!;
                var type = v.TryGetProperty("type", out var t) ? t.GetString() : "query";
                switch (type)
                {
                    case "query":
                        var found = new List<string>();
                        var outcome = await Run(new DashboardQuery(file, "variable", name, name, DashboardFiles.VariableQuery(v) ?? "", dashboardRange), values, result =>
                        {
                            found = VariableValues(result, v);
                            return found.Count;
                        });
                        outcomes.Add(outcome);
                        values[name] = found.Count == 0 ? ["__none__"] : AllValue(v) is { } all ? [all] : found;
                        break;
                    case "custom":
                        var choices = (DashboardFiles.VariableQuery(v) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                        // Multi-value or All: every option, as with "All" selected; single-value: the option the dashboard selects.
                        values[name] = IsMulti(v) ? choices : [CustomCurrent(file, name, v, choices)];
                        break;
                    case "constant" or "textbox":
                        values[name] = [DashboardFiles.VariableQuery(v) ?? ""];
                        break;
                    default:
                        throw new NotSupportedException($"{file}: variable ${name} of type {type}: the check does not expand it");
                }
            }

            foreach (var panel in DashboardFiles.Panels(d))
            {
                var title = DashboardFiles.Title(panel);
                // A panel's relative time override (timeFrom) replaces the dashboard range, as in Grafana.
                var panelRange = panel.TryGetProperty("timeFrom", out var tf) && tf.ValueKind == JsonValueKind.String ? tf.GetString()! : dashboardRange;
                var repeat = panel.TryGetProperty("repeat", out var r) && r.ValueKind == JsonValueKind.String && r.GetString() is { Length: > 0 } rv ? rv : null;
                // A repeated panel is one panel per value of its variable: each copy is checked on its own.
                IEnumerable<(string, string)?> copies = repeat is null ? [null]
                    : values.TryGetValue(repeat, out var rvs) ? rvs.Where(x => x != "__none__").Select(x => ((string, string)?)(repeat, x)).DefaultIfEmpty((repeat, "__none__"))
                    : throw new FormatException($"{file}: panel '{title}' repeats by ${repeat}, which is not a variable");
                foreach (var copy in copies)
                {
                    var scoped = copy is { } c ? new Dictionary<string, IReadOnlyList<string>>(values) { [c.Item1] = [c.Item2] } : values;
                    foreach (var target in DashboardFiles.Targets(panel))
                    {
                        if (target.TryGetProperty("hide", out var hide) && hide.ValueKind == JsonValueKind.True) continue;
                        var q = new DashboardQuery(file, "panel", title, target.GetProperty("refId").GetString()!,
                            target.TryGetProperty("query", out var tq) ? tq.GetString() ?? "" : "", panelRange, copy);
                        outcomes.Add(await Run(q, scoped, CountSeriesWithValues));
                    }
                }
            }
        }

        if (Wanted(DashboardFiles.AlertsFile))
            foreach (var rule in DashboardFiles.AlertRules())
                outcomes.Add(await Run(new DashboardQuery(DashboardFiles.AlertsFile, "alert", rule.Title, "A", rule.Query, rule.FromSeconds + "s"),
                    new Dictionary<string, IReadOnlyList<string>>(), CountSeriesWithValues));

        var unmatched = new List<string>();
        var queryKeys = outcomes.Select(o => $"{o.Query.File} / {o.Query.Title} (refId {o.Query.RefId})").ToHashSet();
        var panelKeys = outcomes.Select(o => $"{o.Query.File} / {o.Query.Title}").ToHashSet();
        foreach (var e in expectedEmpty.Where(e => Wanted(e.File)))
            if (!queryKeys.Contains(e.Key))
                unmatched.Add($"dashboards/README.md:{e.Line}: \"{e.Key}\" names no query (listed as empty when all is well: {e.Reason})");
        foreach (var key in options.NotApplicable.Keys)
            if (!queryKeys.Contains(key) && !panelKeys.Contains(key))
                unmatched.Add($"NotApplicable \"{key}\" names no query of the files checked");

        return new DashboardCheckResult
        {
            Influx = influx, Database = database, Range = range, Interval = interval, Outcomes = outcomes, Unmatched = unmatched,
            Variables = allVariables.ToDictionary(kv => kv.Key, kv => kv.Value),
        };
    }

    /// <summary>The distinct values of a SHOW TAG VALUES (column "value") or a SELECT (first value column), filtered by
    /// the variable's regex as Grafana filters them.</summary>
    private static List<string> VariableValues(JsonElement result, JsonElement variable)
    {
        var found = new List<string>();
        if (!result.TryGetProperty("series", out var series)) return found;
        foreach (var s in series.EnumerateArray())
        {
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString()).ToList();
            int col = columns.IndexOf("value") is >= 0 and var i ? i : columns.FindIndex(c => c != "time" && c != "key");
            if (col < 0 || !s.TryGetProperty("values", out var rows)) continue;
            foreach (var row in rows.EnumerateArray())
                if (row[col].ValueKind != JsonValueKind.Null)
                    found.Add(row[col].ValueKind == JsonValueKind.String ? row[col].GetString()! : row[col].GetRawText());
        }
        var regex = variable.TryGetProperty("regex", out var re) ? re.GetString() : null;
        if (!string.IsNullOrEmpty(regex))
        {
            var m = Regex.Match(regex, @"^/(.*)/([gimsuy]*)$");
            var rx = new Regex(m.Success ? m.Groups[1].Value : regex, m.Success && m.Groups[2].Value.Contains('i') ? RegexOptions.IgnoreCase : RegexOptions.None);
            found = found.Where(v => rx.IsMatch(v)).ToList();
        }
        return found.Distinct().Order(StringComparer.Ordinal).ToList();
    }

    private static bool IsMulti(JsonElement variable) =>
        (variable.TryGetProperty("multi", out var m) && m.ValueKind == JsonValueKind.True)
        || (variable.TryGetProperty("includeAll", out var a) && a.ValueKind == JsonValueKind.True);

    /// <summary>The current value of a single-value custom variable (current.value), which must be one of its options.</summary>
    private static string CustomCurrent(string file, string name, JsonElement variable, string[] options)
    {
        var current = variable.TryGetProperty("current", out var c) && c.ValueKind == JsonValueKind.Object && c.TryGetProperty("value", out var cv)
                      && cv.ValueKind == JsonValueKind.String ? cv.GetString() : null;
        if (current is null) return options.Length > 0 ? options[0] : throw new FormatException($"{file}: custom variable ${name} has no options");
        return options.Contains(current) ? current
            : throw new FormatException($"{file}: custom variable ${name} selects {current}, which is not one of its options ({string.Join(",", options)})");
    }

    /// <summary>A custom "All" value (allValue, e.g. .*) replaces the list of values when All is selected.</summary>
    private static string? AllValue(JsonElement variable) =>
        variable.TryGetProperty("includeAll", out var ia) && ia.ValueKind == JsonValueKind.True
        && variable.TryGetProperty("allValue", out var av) && av.ValueKind == JsonValueKind.String && av.GetString() is { Length: > 0 } all ? all : null;

    private static int CountSeriesWithValues(JsonElement result)
    {
        if (!result.TryGetProperty("series", out var series)) return 0;
        int n = 0;
        foreach (var s in series.EnumerateArray())
        {
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString()).ToList();
            if (s.TryGetProperty("values", out var rows)
                && rows.EnumerateArray().Any(row => row.EnumerateArray().Where((_, i) => columns[i] != "time").Any(v => v.ValueKind != JsonValueKind.Null)))
                n++;
        }
        return n;
    }

    /// <summary>Grafana's $__interval: the range over the panel's data points (about 1000), rounded to a step of its
    /// table, and not below the data source's minimum interval (timeInterval in the provisioned data source).</summary>
    public static string GrafanaInterval(TimeSpan range, int maxDataPoints = 1000)
    {
        var raw = range / maxDataPoints;
        (double Below, string Step)[] table =
        [
            (1.5, "1s"), (3.5, "2s"), (7.5, "5s"), (12.5, "10s"), (17.5, "15s"), (25, "20s"), (45, "30s"), (90, "1m"),
            (210, "2m"), (450, "5m"), (750, "10m"), (1050, "15m"), (1500, "20m"), (2700, "30m"), (5400, "1h"), (9000, "2h"),
        ];
        var step = table.FirstOrDefault(s => raw.TotalSeconds < s.Below).Step ?? "3h";
        var (_, _, text) = DashboardFiles.DataSourceYaml();
        var min = Regex.Match(text, @"^\s+timeInterval:\s*(\S+)\s*$", RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value : "1s";
        return DashboardFiles.ParseDuration(step) < DashboardFiles.ParseDuration(min) ? min : step;
    }
}
