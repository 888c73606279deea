using System.Text.Json;

namespace CityGateway.Tests.Dashboards;

/// <summary>The dashboard JSON, data source and alert rule files are consistent with each other, without any service.</summary>
public sealed class DashboardModelTests
{
    private static readonly string[] Expected = ["city-overview.json", "traffic.json", "water.json", "environment.json", "gateway-health.json", "exchange.json"];

    public static TheoryData<string> Dashboards()
    {
        var data = new TheoryData<string>();
        foreach (var p in DashboardFiles.DashboardPaths()) data.Add(Path.GetFileName(p));
        return data;
    }

    [Fact]
    public void Every_expected_dashboard_exists_and_uids_are_unique_across_files()
    {
        var files = DashboardFiles.DashboardPaths().Select(Path.GetFileName).ToArray();
        foreach (var name in Expected) Assert.Contains(name, files);
        var uids = new Dictionary<string, string>();
        foreach (var path in DashboardFiles.DashboardPaths())
        {
            using var doc = DashboardFiles.Load(path);
            var uid = doc.RootElement.GetProperty("uid").GetString();
            Assert.False(string.IsNullOrWhiteSpace(uid), $"{path}: no uid");
            Assert.True(uid!.Length <= 40, $"{path}: uid longer than Grafana's 40 characters");
            Assert.True(uids.TryAdd(uid, path), $"uid {uid} in both {uids.GetValueOrDefault(uid)} and {path}");
        }
    }

    [Fact]
    public void Provisioned_data_source_declares_the_uid_the_dashboards_use()
    {
        var (uid, type, text) = DashboardFiles.DataSourceYaml();
        Assert.Equal(DashboardFiles.DataSourceUid, uid);
        Assert.Equal("influxdb", type);
        Assert.Contains("version: InfluxQL", text);
        Assert.Contains("dbName: city", text);
        Assert.Contains("url: ${INFLUX_URL}", text);
        var provider = File.ReadAllText(Path.Combine(DashboardFiles.Folder, "provisioning", "dashboards", "city.yaml"));
        Assert.Contains("type: file", provider);
        Assert.Contains("path:", provider);
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Dashboard_model_is_consistent(string file)
    {
        using var doc = DashboardFiles.Load(Path.Combine(DashboardFiles.Folder, file));
        var d = doc.RootElement;
        var (dsUid, _, _) = DashboardFiles.DataSourceYaml();
        var problems = new List<string>();
        Assert.True(d.GetProperty("schemaVersion").GetInt32() >= 36, $"{file}: schemaVersion");
        Assert.False(string.IsNullOrWhiteSpace(DashboardFiles.Title(d)), $"{file}: no title");

        // Variables: each may use only variables defined before it; data source as provisioned.
        var defined = new List<string>();
        foreach (var v in DashboardFiles.Variables(d))
        {
            var name = v.GetProperty("name").GetString()!;
            if (v.GetProperty("type").GetString() == "query")
            {
                var query = DashboardFiles.VariableQuery(v) ?? "";
                if (query.Length == 0) problems.Add($"variable {name}: no query");
                if (!v.TryGetProperty("datasource", out var vds) || vds.GetProperty("uid").GetString() != dsUid)
                    problems.Add($"variable {name}: data source is not {dsUid}");
                foreach (var used in DashboardFiles.UsedVariables(query))
                    if (!DashboardFiles.BuiltIns.Contains(used) && !defined.Contains(used))
                        problems.Add($"variable {name} uses ${used}, which is not defined before it");
            }
            if (defined.Contains(name)) problems.Add($"variable {name} defined twice");
            defined.Add(name);
        }

        var ids = new HashSet<int>();
        foreach (var p in DashboardFiles.Panels(d))
        {
            var title = DashboardFiles.Title(p);
            var type = p.GetProperty("type").GetString();
            if (!p.TryGetProperty("id", out var id) || !ids.Add(id.GetInt32())) problems.Add($"panel '{title}': id missing or repeated");
            if (!p.TryGetProperty("gridPos", out var grid) || new[] { "h", "w", "x", "y" }.Any(k => !grid.TryGetProperty(k, out _)))
                problems.Add($"panel '{title}': gridPos missing or incomplete");
            else if (grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32() > 24) problems.Add($"panel '{title}': wider than the grid");
            if (type is not ("row" or "text") && string.IsNullOrWhiteSpace(p.TryGetProperty("description", out var desc) ? desc.GetString() : null))
                problems.Add($"panel '{title}': no description");
            foreach (var used in DashboardFiles.UsedVariables(title))
                if (!defined.Contains(used)) problems.Add($"panel '{title}': title uses ${used}, which is not a template variable");
            if (p.TryGetProperty("repeat", out var repeat) && repeat.GetString() is { Length: > 0 } by)
            {
                // Grafana repeats by a variable with several values; the copies are told apart by the title.
                var rv = DashboardFiles.Variables(d).FirstOrDefault(v => v.GetProperty("name").GetString() == by);
                if (rv.ValueKind != JsonValueKind.Object) problems.Add($"panel '{title}': repeats by ${by}, which is not a template variable");
                else if (!(rv.TryGetProperty("multi", out var mv) && mv.GetBoolean()) && !(rv.TryGetProperty("includeAll", out var av) && av.GetBoolean()))
                    problems.Add($"panel '{title}': repeats by ${by}, which has neither multi nor All");
                if (!DashboardFiles.UsedVariables(title).Contains(by)) problems.Add($"panel '{title}': repeated by ${by} but its title does not show it");
            }
            var targets = DashboardFiles.Targets(p).ToList();
            if (targets.Count == 0)
            {
                if (type is not ("row" or "text")) problems.Add($"panel '{title}' ({type}): no queries");
                continue;
            }
            var panelDs = p.TryGetProperty("datasource", out var pds) && pds.ValueKind == JsonValueKind.Object ? pds.GetProperty("uid").GetString() : null;
            if (panelDs is not ("-- Grafana --" or "-- Mixed --") && panelDs != dsUid) problems.Add($"panel '{title}': data source {panelDs ?? "none"}, not {dsUid}");
            if (pds.ValueKind == JsonValueKind.Object && pds.GetProperty("uid").GetString() == dsUid && pds.GetProperty("type").GetString() != "influxdb")
                problems.Add($"panel '{title}': data source type is not influxdb");
            foreach (var t in targets)
            {
                var refId = t.GetProperty("refId").GetString();
                var tds = t.TryGetProperty("datasource", out var x) && x.ValueKind == JsonValueKind.Object ? x.GetProperty("uid").GetString() : panelDs;
                if (tds is not ("__expr__" or "-- Grafana --") && tds != dsUid) problems.Add($"panel '{title}' {refId}: data source {tds}");
                if (tds != dsUid) continue;
                if (!t.TryGetProperty("rawQuery", out var raw) || !raw.GetBoolean()) problems.Add($"panel '{title}' {refId}: not a raw InfluxQL query");
                var query = t.TryGetProperty("query", out var q) ? q.GetString() ?? "" : "";
                if (!query.StartsWith("SELECT ", StringComparison.Ordinal)) problems.Add($"panel '{title}' {refId}: query is not a SELECT");
                if (!query.Contains("$timeFilter")) problems.Add($"panel '{title}' {refId}: query without $timeFilter");
                foreach (var used in DashboardFiles.UsedVariables(query))
                    if (!DashboardFiles.BuiltIns.Contains(used) && !defined.Contains(used))
                        problems.Add($"panel '{title}' {refId}: ${used} is not a template variable");
                if (t.TryGetProperty("alias", out var alias))
                    foreach (var used in DashboardFiles.AliasVariables(alias.GetString() ?? ""))
                        if (!defined.Contains(used)) problems.Add($"panel '{title}' {refId}: alias uses ${used}, which is not a template variable");
            }
        }
        Assert.True(ids.Count > 0, $"{file}: no panels");
        Assert.True(problems.Count == 0, $"{file}:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void Alert_rules_query_the_provisioned_data_source_with_reduce_and_threshold()
    {
        var (dsUid, _, _) = DashboardFiles.DataSourceYaml();
        var text = File.ReadAllText(Path.Combine(DashboardFiles.Folder, "provisioning", "alerting", "city-alerts.yaml"));
        Assert.StartsWith("apiVersion: 1", text.Split('\n').First(l => !l.StartsWith('#')));
        var rules = DashboardFiles.AlertRules();
        Assert.Equal(["city-influx-unreachable", "city-influx-write-failures", "city-journal-near-bound", "city-pm25-who", "city-quarantine-spike",
            "city-sensor-silent", "city-water-pressure-low"], rules.Select(r => r.Uid).Order());
        foreach (var r in rules)
        {
            Assert.Equal(dsUid, r.DatasourceUid);
            Assert.Contains("refId: A", r.Text);
            Assert.Contains("type: reduce", r.Text);
            Assert.Contains("type: threshold", r.Text);
            Assert.Contains("condition: C", r.Text);
            Assert.Contains("$timeFilter", r.Query);
            Assert.Contains(r.Op, new[] { "gt", "lt" });
            Assert.Equal("last", r.Reducer);
        }
        Assert.Equal(15, rules.Single(r => r.Uid == "city-pm25-who").Threshold);
        Assert.Equal(1.5, rules.Single(r => r.Uid == "city-water-pressure-low").Threshold);
        Assert.Equal(0.8, rules.Single(r => r.Uid == "city-journal-near-bound").Threshold);
    }

    [Fact]
    public void Grafana_macro_expansion_renders_variables_as_regular_expressions()
    {
        var vars = new Dictionary<string, IReadOnlyList<string>> { ["district"] = ["centre", "old.town"], ["site"] = ["a/b"] };
        var q = DashboardFiles.Expand("SELECT x FROM m WHERE \"district\" =~ /^$district$/ AND \"site\" =~ /^${site}$/ AND $timeFilter GROUP BY time($__interval) -- $__interval_ms",
            "time >= now() - 1h", "5s", vars);
        Assert.Equal("SELECT x FROM m WHERE \"district\" =~ /^(centre|old\\.town)$/ AND \"site\" =~ /^a\\/b$/ AND time >= now() - 1h GROUP BY time(5s) -- 5000", q);
    }

    /// <summary>Tags and fields of the exchange measurements as the release job (shared) and the federation client
    /// (partner) write them; see README, "Data exchange with partner cities".</summary>
    private static readonly Dictionary<string, string[]> ExchangeSchema = new()
    {
        ["shared"] = ["partner", "district", "domain", "metric", "aggregate", "value", "sequence"],
        ["partner"] = ["city", "district", "domain", "metric", "aggregate", "value", "sequence"],
    };

    private static readonly string[] Measurements = ["traffic", "water", "environment", "sites", "gateway", "shared", "partner"];

    [Fact]
    public void Every_query_reads_measurements_the_gateway_writes_and_exchange_queries_only_its_tags_and_fields()
    {
        var problems = new List<string>();
        var queries = new List<(string Where, string Query)>();
        foreach (var path in DashboardFiles.DashboardPaths())
        {
            using var doc = DashboardFiles.Load(path);
            var file = Path.GetFileName(path);
            foreach (var v in DashboardFiles.Variables(doc.RootElement))
                if (v.GetProperty("type").GetString() == "query" && DashboardFiles.VariableQuery(v) is { Length: > 0 } vq) queries.Add(($"{file} ${v.GetProperty("name").GetString()}", vq));
            foreach (var p in DashboardFiles.Panels(doc.RootElement))
                foreach (var t in DashboardFiles.Targets(p))
                    queries.Add(($"{file} '{DashboardFiles.Title(p)}' {t.GetProperty("refId").GetString()}", t.GetProperty("query").GetString()!));
        }
        foreach (var r in DashboardFiles.AlertRules()) queries.Add(($"{DashboardFiles.AlertsFile} {r.Uid}", r.Query));
        foreach (var (where, query) in queries)
        {
            var from = System.Text.RegularExpressions.Regex.Matches(query, @"FROM ((?:""\w+""(?:, )?)+|/\^\(([\w|]+)\)\$/)");
            var read = from.SelectMany(m => m.Groups[2].Success ? m.Groups[2].Value.Split('|') : m.Groups[1].Value.Split(", ").Select(x => x.Trim('"'))).ToList();
            if (read.Count == 0 && !query.Contains("FROM (SELECT")) problems.Add($"{where}: no measurement found in {query}");
            foreach (var m in read.Where(m => !Measurements.Contains(m))) problems.Add($"{where}: measurement {m} is not written by the gateway");
            // A query reads either the exchange measurements or the city's own, never both (their tags differ).
            if (read.Any(ExchangeSchema.ContainsKey) && read.Any(m => !ExchangeSchema.ContainsKey(m)))
                problems.Add($"{where}: reads exchange and other measurements together: {string.Join(", ", read)}");
            // A field named by a variable is a metric the partner releases to us (the side-by-side panels' measured side):
            // only over the domain measurements, and only the variables listing the partner's metrics.
            foreach (var field in System.Text.RegularExpressions.Regex.Matches(query, @"""\$(\w+)""").Select(f => f.Groups[1].Value).Distinct())
                if (field is not ("mean_metric" or "sum_metric") || read.Any(m => m is not ("traffic" or "water" or "environment")))
                    problems.Add($"{where}: field \"${field}\" is not a partner metric variable read from traffic, water, environment");
            foreach (var m in read.Where(ExchangeSchema.ContainsKey).Distinct())
            {
                // Quoted names other than measurements and AS aliases must be tags or fields of the exchange measurements read.
                var aliases = System.Text.RegularExpressions.Regex.Matches(query, @"AS ""(\w+)""").Select(a => a.Groups[1].Value).ToHashSet();
                var allowed = read.Where(ExchangeSchema.ContainsKey).SelectMany(x => ExchangeSchema[x]).ToHashSet();
                foreach (var name in System.Text.RegularExpressions.Regex.Matches(query, @"""(\w+)""").Select(n => n.Groups[1].Value).Distinct())
                    if (!Measurements.Contains(name) && !aliases.Contains(name) && !allowed.Contains(name))
                        problems.Add($"{where}: {name} is neither a tag nor a field of {string.Join(", ", read.Where(ExchangeSchema.ContainsKey).Distinct())}");
            }
        }
        Assert.True(queries.Count >= 60, $"only {queries.Count} queries");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Theory]
    [InlineData("exchange.json")]
    [InlineData("city-overview.json")]
    public void Sister_city_panels_put_our_measured_values_next_to_the_partners_per_metric_aggregate_and_district(string file)
    {
        using var doc = DashboardFiles.Load(Path.Combine(DashboardFiles.Folder, file));
        var d = doc.RootElement;
        var variables = DashboardFiles.Variables(d).ToDictionary(v => v.GetProperty("name").GetString()!);
        var vars = variables.ToDictionary(kv => kv.Key, kv => DashboardFiles.VariableQuery(kv.Value)!);
        Assert.Equal("SHOW TAG VALUES FROM \"sites\" WITH KEY = \"city\"", vars["city"]);
        Assert.Matches(@"^SHOW TAG VALUES FROM (""shared"", )?""partner"" WITH KEY (= ""city""|IN \(""partner"", ""city""\))$", vars["partner"]);
        Assert.DoesNotContain("metric", vars.Keys);
        // The agreements' window: a single value, 15 minutes unless the user picks another.
        var window = variables["window"];
        Assert.Equal("custom", window.GetProperty("type").GetString());
        Assert.Equal("15m,5m,1h", vars["window"]);
        Assert.False(window.GetProperty("multi").GetBoolean());
        Assert.Equal("15m", window.GetProperty("current").GetProperty("value").GetString());

        var panels = DashboardFiles.Panels(d).ToList();
        Assert.DoesNotContain(panels, p => p.TryGetProperty("repeat", out var r) && r.GetString() is { Length: > 0 } by && by != "mean_metric" && by != "sum_metric");
        string district = file == "city-overview.json" ? "\"district\" =~ /^$district$/ AND " : "";
        var sideBySide = new List<JsonElement>();
        foreach (var agg in new[] { "mean", "sum" })
        {
            var by = agg + "_metric";
            Assert.Equal($"SHOW TAG VALUES FROM \"partner\" WITH KEY = \"metric\" WHERE \"city\" =~ /^$partner$/ AND \"aggregate\" = '{agg}'", vars[by]);
            Assert.True(variables[by].GetProperty("multi").GetBoolean() && variables[by].GetProperty("includeAll").GetBoolean(), $"${by}: not multi-value with All");
            var repeated = panels.Where(p => p.TryGetProperty("repeat", out var r) && r.GetString() == by).ToList();
            Assert.NotEmpty(repeated);
            sideBySide.AddRange(repeated);
            foreach (var p in repeated)
            {
                var title = DashboardFiles.Title(p);
                var targets = DashboardFiles.Targets(p).ToList();
                Assert.Equal(2, targets.Count);
                string Q(JsonElement t) => t.GetProperty("query").GetString()!;
                string A(JsonElement t) => t.GetProperty("alias").GetString()!;
                // Ours: our own raw measurements, the same aggregate as the partner's release, per district and agreement window.
                var ours = Assert.Single(targets, t => Q(t).Contains("FROM \"traffic\", \"water\", \"environment\""));
                Assert.Equal($"SELECT {agg}(\"${by}\") FROM \"traffic\", \"water\", \"environment\" WHERE {district}$timeFilter GROUP BY time($window), \"district\" fill(none)", Q(ours));
                // Theirs: the partner's release of that metric with that aggregate, combined over a window as the aggregate combines.
                var theirs = Assert.Single(targets, t => Q(t).Contains("FROM \"partner\""));
                Assert.StartsWith($"SELECT {agg}(\"value\") FROM \"partner\" WHERE ", Q(theirs));
                Assert.Contains("\"city\" =~ /^$partner$/", Q(theirs));
                Assert.Contains($"\"metric\" =~ /^${by}$/", Q(theirs));
                Assert.Contains($"\"aggregate\" = '{agg}'", Q(theirs));
                Assert.EndsWith("GROUP BY time($window), \"city\", \"district\", \"domain\" fill(none)", Q(theirs));
                Assert.True(A(ours).StartsWith("$city $tag_district (measured", StringComparison.Ordinal), $"'{title}': our series are not labelled by city and district as measured: {A(ours)}");
                Assert.True(A(theirs).StartsWith("$tag_city $tag_district (released", StringComparison.Ordinal), $"'{title}': partner series are not labelled by city and district as released: {A(theirs)}");
                Assert.DoesNotContain(targets, t => Q(t).Contains("\"shared\""));
                Assert.Equal("timeseries", p.GetProperty("type").GetString());
            }
        }
        if (file == "city-overview.json")
        {
            var row = Assert.Single(panels, p => p.GetProperty("type").GetString() == "row" && DashboardFiles.Title(p) == "Sister cities");
            int y = row.GetProperty("gridPos").GetProperty("y").GetInt32();
            Assert.All(sideBySide, p => Assert.True(p.GetProperty("gridPos").GetProperty("y").GetInt32() > y, "side-by-side panel above the Sister cities row"));
        }
        else
        {
            // What we released stays visible, per partner, district and metric, below the side-by-side panels.
            var row = Assert.Single(panels, p => p.GetProperty("type").GetString() == "row" && DashboardFiles.Title(p) == "Released by $city");
            int at = panels.IndexOf(row);
            Assert.True(sideBySide.All(p => panels.IndexOf(p) < at), "side-by-side panels below the row Released by $city");
            Assert.Contains(panels.Skip(at + 1), p => DashboardFiles.Targets(p).Any(t => t.GetProperty("query").GetString()!.Contains("FROM \"shared\"")
                                                                                         && t.GetProperty("query").GetString()!.Contains("\"district\", \"metric\"")));
        }
    }

    [Fact]
    public void Empty_when_healthy_list_in_the_readme_names_existing_queries_with_a_reason()
    {
        var entries = DashboardFiles.ExpectedEmptyQueries();
        var keys = DashboardFiles.QueryKeys();
        Assert.NotEmpty(entries);
        Assert.All(entries, e => Assert.True(keys.Contains(e.Key), $"dashboards/README.md:{e.Line}: \"{e.Key}\" names no query"));
        Assert.All(entries, e => Assert.True(e.Reason.Length >= 20, $"dashboards/README.md:{e.Line}: say why it is empty when healthy"));
        Assert.Contains(entries, e => e.Key == "city-overview.json / Silent sensors (refId A)");
    }

    [Fact]
    public void Empty_when_healthy_list_refuses_a_line_of_another_form_and_a_missing_section()
    {
        using var dir = new CityGateway.Tests.Infrastructure.TempDir("readme");
        File.WriteAllText(dir.File("ok.md"), "# x\n\n" + DashboardFiles.ExpectedEmptyHeading + "\n\nIntro.\n\n- `a.json` / **T (1)** (refId B): because\n\n## Next\n- not an entry\n");
        var e = Assert.Single(DashboardFiles.ExpectedEmptyQueries(dir.File("ok.md")));
        Assert.Equal(("a.json", "T (1)", "B", "because", 7), (e.File, e.Title, e.RefId, e.Reason, e.Line));
        File.WriteAllText(dir.File("bad.md"), DashboardFiles.ExpectedEmptyHeading + "\n- a.json / **T** (refId A): no backquotes\n");
        Assert.Contains("bad.md:2", Assert.Throws<FormatException>(() => DashboardFiles.ExpectedEmptyQueries(dir.File("bad.md"))).Message);
        File.WriteAllText(dir.File("none.md"), "# nothing\n");
        Assert.Contains(DashboardFiles.ExpectedEmptyHeading, Assert.Throws<FormatException>(() => DashboardFiles.ExpectedEmptyQueries(dir.File("none.md"))).Message);
    }

    /// <summary>What dashboards/README.md says under "### `file` — Title (uid `uid`)": the description with the variables,
    /// then one line per panel in JSON order (rows too); a panel line may add ": note".</summary>
    public static (string Heading, string Description, List<string> Lines) ReadmeSection(string file)
    {
        using var doc = DashboardFiles.Load(Path.Combine(DashboardFiles.Folder, file));
        var d = doc.RootElement;
        var vars = DashboardFiles.Variables(d).Select(v => "`$" + v.GetProperty("name").GetString() + "`").ToList();
        var lines = new List<string>();
        foreach (var p in DashboardFiles.Panels(d))
        {
            var type = p.GetProperty("type").GetString();
            if (type == "row")
            {
                lines.Add($"- row **{DashboardFiles.Title(p)}**");
                continue;
            }
            var unit = p.TryGetProperty("fieldConfig", out var fc) && fc.TryGetProperty("defaults", out var df) && df.TryGetProperty("unit", out var u) ? $", unit `{u.GetString()}`" : "";
            var repeat = p.TryGetProperty("repeat", out var r) && r.GetString() is { Length: > 0 } by ? $", one per `${by}`" : "";
            lines.Add($"- **{DashboardFiles.Title(p)}** ({type}{unit}{repeat})");
        }
        return ($"### `{file}` — {DashboardFiles.Title(d)} (uid `{d.GetProperty("uid").GetString()}`)",
            d.GetProperty("description").GetString() + (vars.Count > 0 ? " Variables: " + string.Join(", ", vars) + "." : ""), lines);
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Readme_describes_the_dashboard_and_lists_its_panels_in_order(string file)
    {
        var (heading, description, expected) = ReadmeSection(file);
        var readme = File.ReadAllLines(DashboardFiles.ReadmePath);
        int at = Array.IndexOf(readme, heading);
        var wanted = $"{heading}\n\n{description}\n\n{string.Join("\n", expected)}";
        Assert.True(at >= 0, $"dashboards/README.md has no heading {heading}; the section should read:\n{wanted}");
        Assert.True(readme[at + 2] == description, $"dashboards/README.md:{at + 3} should read:\n{description}");
        var listed = readme.Skip(at + 4).TakeWhile(l => l.StartsWith("- ", StringComparison.Ordinal)).ToList();
        var actual = listed.Select((l, i) => i < expected.Count && l.StartsWith(expected[i] + ": ", StringComparison.Ordinal) ? expected[i] : l).ToList();
        Assert.True(actual.SequenceEqual(expected), $"dashboards/README.md, {heading}: the panel list should read (a note may follow \": \"):\n{string.Join("\n", expected)}");
    }
}
