using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CityGateway.Normalisation;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks.E2e;

/// <summary>
/// Node-RED doing the gateway's job, for comparison: <c>mqtt in</c> (same topics, same QoS) →
/// <c>json</c> → a <c>function</c> that maps each message as the gateway's normaliser does (device
/// registry lookup for measurement, city, district and site tags; lane and vehicleType tags;
/// canonical metric names; the same linear unit conversions and physical bounds, taken from the
/// gateway's own unit table and metric catalogue; the device timestamp) and collects points into
/// batches of 5,000 (the gateway's batch size) or whatever a 1-second timer finds (the gateway
/// flushes a partial batch after 500 ms; at these rates batches fill first) → <c>influxdb batch</c> (node-red-contrib-influxdb, InfluxDB 1.x) into a fresh
/// database. A <c>complete</c> node after the batch node counts the points InfluxDB accepted and
/// logs the running total, which is how the benchmark sees progress. Differences from the gateway:
/// no journal, no quarantine, the <c>seq</c> field is written as a float (the library writes every
/// number as a float), and the writes are not gzip-compressed (the library does not offer it).
/// </summary>
internal sealed partial class NodeRedFlow : IDisposable
{
    public const string NodeRedVersion = "4.1.8";
    public const string InfluxNodesVersion = "0.7.0";
    private const int BatchSize = 5000;

    private readonly ServiceProcess _process;
    private readonly TempDir _dir;
    private long _stored;
    private string? _failure;

    private NodeRedFlow(ServiceProcess process, TempDir dir)
    {
        _process = process;
        _dir = dir;
    }

    public int Pid => _process.Id;

    public double CpuSeconds() => _process.CpuSeconds();

    /// <summary>Points the influxdb batch node has had accepted so far (from the flow's log lines).</summary>
    public long Stored
    {
        get
        {
            Scan();
            return Interlocked.Read(ref _stored);
        }
    }

    /// <summary>A write error the flow logged, if any.</summary>
    public string? Failure
    {
        get
        {
            Scan();
            return _failure;
        }
    }

    public string Log => _process.Output;

    private int _scanned;

    private void Scan()
    {
        var log = _process.Output;
        if (log.Length == _scanned) return;
        var fresh = log[_scanned..];
        int end = fresh.LastIndexOf('\n');
        if (end < 0) return;
        _scanned += end + 1;
        foreach (Match m in StoredLine().Matches(fresh[..end]))
            Interlocked.Exchange(ref _stored, Math.Max(Interlocked.Read(ref _stored), long.Parse(m.Groups[1].Value)));
        var failed = fresh[..end].Split('\n').FirstOrDefault(l => l.Contains("[error]", StringComparison.Ordinal) || l.Contains("write failed", StringComparison.Ordinal));
        if (failed is not null) _failure ??= failed.Trim();
    }

    [GeneratedRegex(@"stored (\d+)")]
    private static partial Regex StoredLine();

    /// <summary>
    /// Installs node-red and node-red-contrib-influxdb with npm into <paramref name="folder"/>
    /// (a cache outside the repository) unless the pinned versions are already there. Returns null
    /// when ready, else why not.
    /// </summary>
    public static string? EnsureInstalled(string folder)
    {
        if (Installed(folder)) return null;
        if (ServiceProcess.Which("node") is null || ServiceProcess.Which("npm") is null)
            return "node and npm are needed for the Node-RED case (Debian: apt-get install nodejs npm)";
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "package.json"), """{ "name": "city-gateway-bench-node-red", "private": true }""" + "\n");
        Console.WriteLine($"installing node-red {NodeRedVersion} and node-red-contrib-influxdb {InfluxNodesVersion} into {folder} (npm)...");
        var psi = new ProcessStartInfo("npm")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error",
                     $"node-red@{NodeRedVersion}", $"node-red-contrib-influxdb@{InfluxNodesVersion}" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            return "npm install did not finish within 10 minutes";
        }
        if (p.ExitCode != 0 || !Installed(folder))
            return $"npm install failed (exit {p.ExitCode}): {stderr.Result.Trim()} {stdout.Result.Trim()}";
        return null;
    }

    private static bool Installed(string folder)
    {
        string Version(string package)
        {
            var file = Path.Combine(folder, "node_modules", package, "package.json");
            if (!File.Exists(file)) return "";
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            return doc.RootElement.GetProperty("version").GetString() ?? "";
        }
        return Version("node-red") == NodeRedVersion && Version("node-red-contrib-influxdb") == InfluxNodesVersion;
    }

    /// <summary>Writes settings and flow into a fresh user folder, starts Node-RED and waits until
    /// its flow has subscribed.</summary>
    public static async Task<NodeRedFlow> StartAsync(string installFolder, MosquittoBroker broker, int influxPort, string database,
        int qos, string clientId, DeviceRegistryFile registry)
    {
        var dir = new TempDir("bench-node-red");
        try
        {
            int port = ServiceProcess.FreePort();
            File.WriteAllText(dir.File("settings.js"), Settings(dir.Path, port));
            File.WriteAllText(dir.File("flows.json"), Flow(broker.Port, influxPort, database, qos, clientId, registry));
            var red = Path.Combine(installFolder, "node_modules", "node-red", "red.js");
            var process = ServiceProcess.Start("node", $"{red} --userDir {dir.Path} --settings {dir.File("settings.js")}", dir.Path);
            var flow = new NodeRedFlow(process, dir);
            await Wait.UntilAsync(() =>
            {
                if (process.HasExited) throw new BenchmarkFailure("node-red exited at start:\n" + process.Output);
                return process.Output.Contains("Started flows", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(60), () => "node-red did not start its flows:\n" + process.Output);
            await broker.WaitForSubscriptionAsync(clientId, "city/json/#", TimeSpan.FromSeconds(30));
            return flow;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private static string Settings(string userDir, int port) => $$"""
        // Generated by the end-to-end benchmark: loopback only, no editor, no admin API.
        module.exports = {
            uiHost: "127.0.0.1",
            uiPort: {{port}},
            userDir: {{JsonSerializer.Serialize(userDir)}},
            flowFile: "flows.json",
            credentialSecret: false,
            httpAdminRoot: false,
            httpNodeRoot: false,
            disableEditor: true,
            functionExternalModules: false,
            externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
            diagnostics: { enabled: false },
            telemetry: { enabled: false },
            contextStorage: { default: { module: "memory" } },
            logging: { console: { level: "info", metrics: false, audit: false } },
        };
        """;

    /// <summary>The flow as Node-RED's flows.json.</summary>
    internal static string Flow(int brokerPort, int influxPort, string database, int qos, string clientId, DeviceRegistryFile file)
    {
        var nodes = new object[]
        {
            new { id = "bench-tab", type = "tab", label = "city telemetry to InfluxDB" },
            new
            {
                id = "bench-broker", type = "mqtt-broker", name = "broker", broker = "127.0.0.1", port = brokerPort.ToString(),
                clientid = clientId, autoConnect = true, usetls = false, protocolVersion = "4", keepalive = "60", cleansession = true,
                autoUnsubscribe = true, birthTopic = "", closeTopic = "", willTopic = "",
            },
            new
            {
                id = "bench-in", type = "mqtt in", z = "bench-tab", name = "devices", topic = "city/json/#", qos = qos.ToString(),
                datatype = "utf8", broker = "bench-broker", nl = false, rap = true, rh = 0, inputs = 0, wires = new[] { new[] { "bench-json" } },
            },
            new { id = "bench-json", type = "json", z = "bench-tab", name = "", property = "payload", action = "obj", pretty = false, wires = new[] { new[] { "bench-map" } } },
            new
            {
                id = "bench-map", type = "function", z = "bench-tab", name = "to points", func = MapFunction.Replace("BATCH", BatchSize.ToString(CultureInfo.InvariantCulture)), outputs = 1, timeout = 0, noerr = 0,
                initialize = MapInitialise(file), finalize = "clearInterval(context.get('state').timer);\n", libs = Array.Empty<object>(),
                wires = new[] { new[] { "bench-batch" } },
            },
            new
            {
                id = "bench-batch", type = "influxdb batch", z = "bench-tab", influxdb = "bench-influx", precision = "", retentionPolicy = "",
                name = "InfluxDB", database = "", precisionV18FluxV20 = "ns", retentionPolicyV18Flux = "", org = "", bucket = "", wires = Array.Empty<object>(),
            },
            new
            {
                id = "bench-influx", type = "influxdb", hostname = "127.0.0.1", port = influxPort.ToString(), protocol = "http", database,
                name = "city", usetls = false, tls = "", influxdbVersion = "1.x", url = "", timeout = "10", rejectUnauthorized = false,
            },
            new { id = "bench-done", type = "complete", z = "bench-tab", name = "", scope = new[] { "bench-batch" }, uncaught = false, wires = new[] { new[] { "bench-count" } } },
            new
            {
                id = "bench-count", type = "function", z = "bench-tab", name = "progress", outputs = 1, timeout = 0, noerr = 0, initialize = "", finalize = "",
                libs = Array.Empty<object>(), wires = Array.Empty<object>(),
                func = "const n = (context.get('n') || 0) + msg.payload.length;\ncontext.set('n', n);\nnode.warn('stored ' + n);\nreturn null;\n",
            },
            new { id = "bench-catch", type = "catch", z = "bench-tab", name = "", scope = new[] { "bench-batch" }, uncaught = false, wires = new[] { new[] { "bench-fail" } } },
            new
            {
                id = "bench-fail", type = "function", z = "bench-tab", name = "write failed", outputs = 1, timeout = 0, noerr = 0, initialize = "", finalize = "",
                libs = Array.Empty<object>(), wires = Array.Empty<object>(),
                func = "node.warn('write failed: ' + (msg.error && msg.error.message));\nreturn null;\n",
            },
        };
        return JsonSerializer.Serialize(nodes, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Per message: look the device up, map and convert its fields, add the point to the batch.</summary>
    private const string MapFunction = """
        const s = context.get('state');
        const p = msg.payload;
        const d = s.devices[p.device];
        if (d === undefined) { node.warn('unknown device ' + p.device); return null; }
        const map = s.types[d[3]];
        const fields = {};
        for (let i = 0; i < map.length; i++) {
            const m = map[i];
            const v = p[m[0]];
            if (typeof v !== 'number') continue;
            const x = v * m[2] + m[3];
            if ((m[4] !== null && x < m[4]) || (m[5] !== null && x > m[5])) continue;
            fields[m[1]] = x;
        }
        const tags = { city: s.city, device: p.device, district: d[1], site: d[2] };
        if (p.lane !== undefined) tags.lane = String(p.lane);
        if (p.vehicleType !== undefined) tags.vehicleType = String(p.vehicleType);
        s.batch.push({ measurement: d[0], tags: tags, fields: fields, timestamp: new Date(p.ts) });
        if (s.batch.length < BATCH) return null;
        const full = s.batch;
        s.batch = [];
        return { payload: full };
        """;

    /// <summary>On start: the registry as lookup tables, an empty batch, and the 1-second flush timer.</summary>
    private static string MapInitialise(DeviceRegistryFile file)
    {
        var registry = DeviceRegistry.Build(file, "benchmark");
        var units = UnitTable.Default;
        var devices = new Dictionary<string, string[]>();
        var types = new Dictionary<string, List<object?[]>>();
        foreach (var d in registry.Devices)
        {
            devices[d.Id] = [d.Domain, d.District, d.Site, d.Type.Name];
            if (types.ContainsKey(d.Type.Name)) continue;
            var map = new List<object?[]>();
            foreach (var f in d.Type.Fields.Values)
            {
                if (f.Ignored) continue;
                if (f.Metric is null)
                {
                    map.Add([f.SourceName, f.FieldName, 1.0, 0.0, null, null]);
                    continue;
                }
                if (!units.TryGetConverter(f.DefaultUnit, f.Metric, out var c))
                    throw new InvalidOperationException($"no conversion from {f.DefaultUnit} for {f.Metric.Name}");
                map.Add([f.SourceName, f.Metric.Name, c.Scale, c.Offset, Bound(f.Metric.Min), Bound(f.Metric.Max)]);
            }
            types[d.Type.Name] = map;
        }
        var city = registry.Devices.First().City;
        var sb = new StringBuilder();
        sb.Append("const state = {\n");
        sb.Append("  city: ").Append(JsonSerializer.Serialize(city)).Append(",\n");
        sb.Append("  devices: ").Append(JsonSerializer.Serialize(devices)).Append(",\n");
        sb.Append("  types: ").Append(JsonSerializer.Serialize(types)).Append(",\n");
        sb.Append("  batch: [],\n};\n");
        sb.Append("""
            context.set('state', state);
            // A partial batch goes out after a second (at benchmark rates, batches fill first).
            state.timer = setInterval(function () {
                if (state.batch.length === 0) return;
                const b = state.batch;
                state.batch = [];
                node.send({ payload: b }, false);
            }, 1000);

            """);
        return sb.ToString();
    }

    private static double? Bound(double v) => double.IsFinite(v) ? v : null;

    public void Dispose()
    {
        _process.Terminate(TimeSpan.FromSeconds(10));
        _process.Dispose();
        _dir.Dispose();
    }
}
