using System.Text.Json;
using System.Text.RegularExpressions;

namespace CityGateway.Tests.Dashboards;

/// <summary>The Grafana dashboards, data source and alert rules under dashboards/, read as the tests need them.</summary>
public static partial class DashboardFiles
{
    public const string DataSourceUid = "city-influxdb";

    /// <summary>Variables Grafana itself provides to InfluxQL queries; they are not defined in templating.list.</summary>
    public static readonly HashSet<string> BuiltIns = ["timeFilter", "__interval", "__interval_ms", "interval", "__timeFilter", "__range", "__range_s", "__range_ms"];

    public static string Root => Infrastructure.Repository.Root;

    public static string Folder => Path.Combine(Root, "dashboards");

    public static IReadOnlyList<string> DashboardPaths() =>
        Directory.GetFiles(Folder, "*.json").OrderBy(p => p, StringComparer.Ordinal).ToArray();

    public static JsonDocument Load(string path) => JsonDocument.Parse(File.ReadAllText(path));

    public static IEnumerable<JsonElement> Panels(JsonElement dashboard)
    {
        if (!dashboard.TryGetProperty("panels", out var panels)) yield break;
        foreach (var p in panels.EnumerateArray())
        {
            yield return p;
            if (p.TryGetProperty("panels", out var nested)) // collapsed rows
                foreach (var n in nested.EnumerateArray()) yield return n;
        }
    }

    public static IEnumerable<JsonElement> Targets(JsonElement panel) =>
        panel.TryGetProperty("targets", out var t) ? t.EnumerateArray() : [];

    public static IReadOnlyList<JsonElement> Variables(JsonElement dashboard) =>
        dashboard.TryGetProperty("templating", out var t) && t.TryGetProperty("list", out var l) ? l.EnumerateArray().ToList() : [];

    public static string Title(JsonElement e) => e.TryGetProperty("title", out var t) ? t.GetString() ?? "" : "";

    public static string? VariableQuery(JsonElement variable) =>
        variable.TryGetProperty("query", out var q) ? q.ValueKind == JsonValueKind.String ? q.GetString() :
            q.TryGetProperty("query", out var inner) ? inner.GetString() : null : null;

    /// <summary>Names of the variables a query uses: $name, ${name}, ${name:format}, [[name]].</summary>
    public static IEnumerable<string> UsedVariables(string query) =>
        VariableRegex().Matches(query).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Success ? m.Groups[2].Value : m.Groups[3].Value).Distinct();

    [GeneratedRegex(@"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)")]
    private static partial Regex VariableRegex();

    /// <summary>The uid the provisioned data source declares (a few string checks; no YAML library).</summary>
    public static (string Uid, string Type, string Text) DataSourceYaml()
    {
        var text = File.ReadAllText(Path.Combine(Folder, "provisioning", "datasources", "city-influxdb.yaml"));
        string Value(string key) => Regex.Match(text, @"^\s+-?\s*" + key + @":\s*(\S+)\s*$", RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value : "";
        return (Value("uid"), Value("type"), text);
    }

    public sealed record AlertRule(string Uid, string Title, string DatasourceUid, int FromSeconds, string Query, string Reducer, string Op, double Threshold, string Text);

    /// <summary>The alert rules of dashboards/provisioning/alerting/city-alerts.yaml, read with regular expressions:
    /// the file is written in one fixed layout (queries as double-quoted strings, evaluators as flow mappings).</summary>
    public static IReadOnlyList<AlertRule> AlertRules()
    {
        var text = File.ReadAllText(AlertsPath);
        var blocks = Regex.Split(text, @"^      - uid: ", RegexOptions.Multiline).Skip(1);
        var rules = new List<AlertRule>();
        foreach (var block in blocks)
        {
            string uid = block[..block.IndexOf('\n')].Trim();
            string Match(string pattern) => Regex.Match(block, pattern, RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value
                : throw new FormatException($"alert rule {uid}: no match for {pattern}");
            var title = JsonSerializer.Deserialize<string>(Match(@"^        title: (.+)$"))!;
            var query = JsonSerializer.Deserialize<string>(Match(@"^              query: (.+)$"))!;
            var evaluator = Regex.Match(block, @"evaluator: \{ type: (\w+), params: \[([^\]]+)\] \}");
            if (!evaluator.Success) throw new FormatException($"alert rule {uid}: no threshold evaluator");
            rules.Add(new AlertRule(uid, title, Match(@"^            datasourceUid: (\S+)$"), int.Parse(Match(@"relativeTimeRange: \{ from: (\d+)")),
                query, Match(@"^              reducer: (\w+)$"), evaluator.Groups[1].Value,
                double.Parse(evaluator.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), block));
        }
        return rules;
    }

    public const string AlertsFile = "city-alerts.yaml";

    public static string AlertsPath => Path.Combine(Folder, "provisioning", "alerting", AlertsFile);

    public static string ReadmePath => Path.Combine(Folder, "README.md");

    /// <summary>The heading of the section of dashboards/README.md that lists the queries empty when all is well.</summary>
    public const string ExpectedEmptyHeading = "## Empty when all is well";

    /// <summary>One line of that section: <c>- `file` / **Panel or rule title** (refId X): why</c>.</summary>
    public sealed record ExpectedEmpty(string File, string Title, string RefId, string Reason, int Line)
    {
        public string Key => $"{File} / {Title} (refId {RefId})";
    }

    /// <summary>
    /// The entries of the "Empty when all is well" section of <paramref name="readmePath"/> (default
    /// dashboards/README.md). Every list item of the section must have the fixed form; a malformed one
    /// is a <see cref="FormatException"/> naming its line, so the list cannot silently stop matching.
    /// </summary>
    public static IReadOnlyList<ExpectedEmpty> ExpectedEmptyQueries(string? readmePath = null)
    {
        readmePath ??= ReadmePath;
        var lines = File.ReadAllLines(readmePath);
        int start = Array.FindIndex(lines, l => l.TrimEnd() == ExpectedEmptyHeading);
        if (start < 0) throw new FormatException($"{readmePath}: no section \"{ExpectedEmptyHeading}\"");
        var entries = new List<ExpectedEmpty>();
        for (int i = start + 1; i < lines.Length && !lines[i].StartsWith("#", StringComparison.Ordinal); i++)
        {
            if (!lines[i].StartsWith("- ", StringComparison.Ordinal)) continue;
            var m = ExpectedEmptyLine().Match(lines[i]);
            if (!m.Success)
                throw new FormatException($"{readmePath}:{i + 1}: not of the form \"- `file.json` / **Panel title** (refId A): why\": {lines[i]}");
            entries.Add(new ExpectedEmpty(m.Groups["file"].Value, m.Groups["title"].Value, m.Groups["ref"].Value, m.Groups["why"].Value.Trim(), i + 1));
        }
        var repeated = entries.GroupBy(e => e.Key).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (repeated.Count > 0) throw new FormatException($"{readmePath}: listed twice: {string.Join(", ", repeated)}");
        return entries;
    }

    /// <summary>Every query as "file / title (refId X)": panel targets of every dashboard and each alert rule's query A
    /// (the keys of the "Empty when all is well" list).</summary>
    public static IReadOnlySet<string> QueryKeys()
    {
        var keys = new HashSet<string>();
        foreach (var path in DashboardPaths())
        {
            using var doc = Load(path);
            foreach (var panel in Panels(doc.RootElement))
                foreach (var t in Targets(panel))
                    keys.Add($"{Path.GetFileName(path)} / {Title(panel)} (refId {t.GetProperty("refId").GetString()})");
        }
        foreach (var rule in AlertRules()) keys.Add($"{AlertsFile} / {rule.Title} (refId A)");
        return keys;
    }

    /// <summary>Variables a panel target's alias uses, less Grafana's own alias patterns ($tag_x, $col, $m, $measurement).</summary>
    public static IEnumerable<string> AliasVariables(string alias) =>
        UsedVariables(alias).Where(v => !v.StartsWith("tag_", StringComparison.Ordinal) && v is not ("col" or "m" or "measurement"));

    [GeneratedRegex(@"^- `(?<file>[^`]+)` / \*\*(?<title>.+?)\*\* \(refId (?<ref>[A-Za-z0-9_]+)\): (?<why>\S.*)$")]
    private static partial Regex ExpectedEmptyLine();

    /// <summary>
    /// Grafana's InfluxQL macro expansion: $timeFilter, $__interval, $__interval_ms, $interval, and template
    /// variables as regular-expression alternations of their values, (a|b) (multi-value or All).
    /// </summary>
    public static string Expand(string query, string timeFilter, string interval, IReadOnlyDictionary<string, IReadOnlyList<string>> variables)
    {
        var intervalMs = (long)ParseDuration(interval).TotalMilliseconds;
        return VariableRegex().Replace(query, m =>
        {
            var name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Success ? m.Groups[2].Value : m.Groups[3].Value;
            return name switch
            {
                "timeFilter" or "__timeFilter" => timeFilter,
                "__interval" or "interval" => interval,
                "__interval_ms" => intervalMs.ToString(),
                _ when variables.TryGetValue(name, out var values) => values.Count == 1 ? RegexEscape(values[0]) : "(" + string.Join("|", values.Select(RegexEscape)) + ")",
                _ => m.Value,
            };
        });
    }

    /// <summary>Grafana escapes these characters in values it puts into an InfluxQL regular expression.</summary>
    public static string RegexEscape(string value) => Regex.Replace(value, @"[\\^$.|?*+()\[\]{}/]", m => "\\" + m.Value);

    public static TimeSpan ParseDuration(string s)
    {
        var m = Regex.Match(s, @"^(\d+)(ms|s|m|h|d)$");
        if (!m.Success) throw new FormatException("duration " + s);
        double n = double.Parse(m.Groups[1].Value);
        return m.Groups[2].Value switch { "ms" => TimeSpan.FromMilliseconds(n), "s" => TimeSpan.FromSeconds(n), "m" => TimeSpan.FromMinutes(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromDays(n) };
    }
}
