using System.Diagnostics;
using System.Net;
using System.Text.Json;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Dashboards;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.LocalStack;

/// <summary>
/// The one-command stack as a newcomer runs it: deploy/run-local.sh, started the way a background
/// job is (SIGINT ignored on entry), in a folder of its own on free ports. Both cities come up,
/// each city's "partner" equals what the other released within three minutes (deploy/check-local.sh),
/// a device the user added to the city's own registry is ingested, the operator key made at first
/// start opens the quarantine API, and SIGINT stops everything cleanly. A second start reuses the
/// keys and agreements and stops on SIGTERM.
/// </summary>
[Collection(LocalStackCollection.Name)]
public sealed class LocalStackTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _state = new("local-stack");

    [Fact]
    public async Task Two_cities_share_within_three_minutes_and_stop_cleanly_on_both_signals()
    {
        var root = Repository.Root;
        var env = new Dictionary<string, string>
        {
            ["STATE_DIR"] = _state.Path,
            ["SIM_BACKFILL"] = "2h",
            ["SIM_RATE"] = "20",
        };
        foreach (var name in new[] { "MQTT_PORT", "SISTER_MQTT_PORT", "INFLUX_PORT", "INFLUX_RPC_PORT", "GATEWAY_PORT",
                                     "OPERATOR_PORT", "SISTER_GATEWAY_PORT", "SISTER_OPERATOR_PORT" })
            env[name] = ServiceProcess.FreePort().ToString();
        int Port(string name) => int.Parse(env[name]);

        // A device of the user's own, in the city's own registry file, kept apart from the simulated fleet's.
        Directory.CreateDirectory(Path.Combine(_state.Path, "lumen"));
        File.WriteAllText(Path.Combine(_state.Path, "lumen", "devices.json"), """
            {
              "city": "lumen",
              "deviceTypes": { "my-aq": { "domain": "environment", "fields": { "pm25": { "metric": "pm25", "unit": "ug/m3" } } } },
              "devices": { "my-sensor-1": { "type": "my-aq", "district": "centre", "site": "my-balcony" } }
            }
            """);

        using (var stack = StackProcess.Start(root, env))
        {
            await stack.WaitForOutputAsync("Press Ctrl-C to stop everything.", TimeSpan.FromMinutes(8));
            var ready = Stopwatch.StartNew();
            output.WriteLine(stack.Output);

            // 1. Each city's partner measurement equals the other's shared one, within three minutes.
            var (code, check) = await RunAsync(root, "deploy/check-local.sh", "--wait 180", env, TimeSpan.FromMinutes(4));
            output.WriteLine(check);
            Assert.True(code == 0, "deploy/check-local.sh failed:\n" + check + "\n--- stack output:\n" + stack.Output);
            Assert.True(ready.Elapsed < TimeSpan.FromMinutes(3), $"the check took {ready.Elapsed} after start");
            Assert.Contains("Lumen -> Samudra", check);
            Assert.Contains("Samudra -> Lumen", check);

            // 2. Every dashboard query returns data against each city's database, apart from the
            //    panels dashboards/README.md lists as empty when all is well.
            var influxUrl = new Uri($"http://127.0.0.1:{Port("INFLUX_PORT")}");
            foreach (var database in new[] { "city", "sister" })
            {
                // Rates need two buckets: the stack has been up for at least two minutes.
                await Wait.UntilAsync(() => ready.Elapsed > TimeSpan.FromMinutes(2.2), TimeSpan.FromMinutes(3), () => "waiting out two minutes");
                // No exceptions beyond the README's list: both cities have a serial instrument too.
                var dashboards = await DashboardCheck.RunAsync(influxUrl, database, "3h", new DashboardCheckOptions());
                output.WriteLine($"--- dashboards against \"{database}\":\n" + dashboards.Summary());
                Assert.True(dashboards.Ok, $"dashboards against \"{database}\":\n" + dashboards.Summary());
            }

            // 3. Each city's transparency page is up on its partner listener and names the other.
            using var http = new HttpClient();
            foreach (var (gatewayPort, partnerName) in new[] { ("GATEWAY_PORT", "Samudra"), ("SISTER_GATEWAY_PORT", "Lumen") })
            {
                var page = await http.GetStringAsync($"http://127.0.0.1:{Port(gatewayPort)}/transparency?lang=id");
                Assert.Contains(partnerName, page);
                Assert.Contains("<svg", page);
            }

            // 4. The user's own device is ingested beside the simulated fleet.
            using var publisher = await Publisher.ConnectAsync($"mqtt://127.0.0.1:{Port("MQTT_PORT")}");
            publisher.Publish("city/json/environment/my-sensor-1", $$"""{"pm25": 12.5, "ts": {{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}}}""");
            using var influx = new InfluxClient(new InfluxOptions { Url = $"http://127.0.0.1:{Port("INFLUX_PORT")}", Database = "city", Gzip = false });
            await Wait.UntilAsync(async () => await CountAsync(influx, "SELECT count(pm25) FROM environment WHERE device = 'my-sensor-1'") > 0,
                TimeSpan.FromSeconds(30), () => "the user's device my-sensor-1 was not stored");

            // 5. The operator key made at first start opens the quarantine API; without it, 401.
            var quarantine = $"http://127.0.0.1:{Port("OPERATOR_PORT")}/api/quarantine";
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(quarantine)).StatusCode);
            var key = File.ReadAllText(Path.Combine(_state.Path, "lumen", "operator-key")).Trim();
            using (var request = new HttpRequestMessage(HttpMethod.Get, quarantine) { Headers = { { "Authorization", "Bearer " + key } } })
                Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request)).StatusCode);

            // 6. SIGINT, although the script started with it ignored, stops everything.
            stack.Signal(2);
            Assert.True(await stack.WaitForExitAsync(TimeSpan.FromSeconds(90)), "the stack did not stop on SIGINT:\n" + stack.Output);
            Assert.Equal(0, stack.ExitCode);
            Assert.Contains("Stopped.", stack.Output);
        }
        AssertAllPortsFree(env);
        AssertNoProcessLeft();
        foreach (var city in new[] { "lumen", "samudra" })
        {
            Assert.True(File.Exists(Path.Combine(_state.Path, city, "mosquitto", "mosquitto.db")), $"{city}'s broker saved no session");
            Assert.DoesNotContain("Error saving", File.ReadAllText(Path.Combine(_state.Path, "logs", city + "-mosquitto.log")));
        }

        // A second start reuses what the first made, and stops on SIGTERM.
        var keys = KeyFiles().ToDictionary(f => f, File.ReadAllText);
        using (var again = StackProcess.Start(root, env))
        {
            await again.WaitForOutputAsync("Press Ctrl-C to stop everything.", TimeSpan.FromMinutes(5));
            foreach (var made in new[] { "s signing key (", "Made Lumen's operator key", "Made Samudra's operator key", " issued ", "Wrote the agreement" })
                Assert.DoesNotContain(made, again.Output);
            foreach (var (file, text) in keys) Assert.Equal(text, File.ReadAllText(file));
            var (code, check) = await RunAsync(root, "deploy/check-local.sh", "--wait 120", env, TimeSpan.FromMinutes(3));
            Assert.True(code == 0, "after a restart, deploy/check-local.sh failed:\n" + check);
            again.Signal(15);
            Assert.True(await again.WaitForExitAsync(TimeSpan.FromSeconds(90)), "the stack did not stop on SIGTERM:\n" + again.Output);
            Assert.Contains("Stopped.", again.Output);
        }
        AssertAllPortsFree(env);
        AssertNoProcessLeft();
    }

    /// <summary>No process the stack started (each names a file in its folder on its command line:
    /// simulators, gateways, brokers, socat) outlives the stop.</summary>
    private void AssertNoProcessLeft()
    {
        var left = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            string command;
            try { command = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim(); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (command.Contains(_state.Path, StringComparison.Ordinal)) left.Add($"{pid}: {command}");
        }
        Assert.True(left.Count == 0, "still running after the stack stopped:\n" + string.Join("\n", left));
    }

    private IEnumerable<string> KeyFiles() =>
        new[] { "lumen", "samudra" }.SelectMany(c => new[]
        {
            Path.Combine(_state.Path, c, "city-key.pem"), Path.Combine(_state.Path, c, "operator-key"),
            Path.Combine(_state.Path, c, "keys", (c == "lumen" ? "samudra" : "lumen") + ".key"),
            Path.Combine(_state.Path, c, "agreements", (c == "lumen" ? "samudra" : "lumen") + ".json"),
        });

    private static void AssertAllPortsFree(Dictionary<string, string> env)
    {
        foreach (var (name, port) in env.Where(e => e.Key.EndsWith("_PORT")))
            Assert.False(ServiceProcess.PortOpen(int.Parse(port)), $"{name} {port} is still open after the stack stopped");
    }

    private static async Task<long> CountAsync(InfluxClient influx, string query)
    {
        using var doc = await influx.QueryAsync(query);
        var result = doc.RootElement.GetProperty("results")[0];
        if (!result.TryGetProperty("series", out var series)) return 0;
        return series[0].GetProperty("values")[0][1].GetInt64();
    }

    private static async Task<(int Code, string Output)> RunAsync(string root, string script, string args, Dictionary<string, string> env, TimeSpan timeout)
    {
        using var p = StackProcess.Start(root, env, script, args);
        if (!await p.WaitForExitAsync(timeout)) return (-1, p.Output + "\n(timed out)");
        return (p.ExitCode, p.Output);
    }

    public void Dispose() => _state.Dispose();
}

[CollectionDefinition(Name)]
public sealed class LocalStackCollection
{
    public const string Name = "local stack";
}

/// <summary>A script of the repository run by bash with SIGINT ignored when it starts, as for a
/// background job of a non-interactive shell.</summary>
internal static class StackProcess
{
    public static ServiceProcess Start(string root, Dictionary<string, string> env, string script = "deploy/run-local.sh", string args = "")
    {
        var environment = env.ToDictionary(e => e.Key, e => (string?)e.Value);
        environment["RUN_LOCAL_SIGNALS"] = null;
        return ServiceProcess.Start("bash", $"-c \"trap '' INT; exec bash {script} {args}\"", root, environment);
    }

    public static async Task WaitForOutputAsync(this ServiceProcess process, string text, TimeSpan timeout)
    {
        await Wait.UntilAsync(() => process.Output.Contains(text) || process.HasExited, timeout, () => $"no '{text}' in:\n{process.Output}");
        if (!process.Output.Contains(text)) throw new InvalidOperationException($"the script stopped before '{text}':\n{process.Output}");
    }
}
