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
}
