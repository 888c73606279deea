using System.Text.Json;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Infrastructure;

/// <summary>A real InfluxDB 1.x server (Debian's influxd) on free loopback ports, data in a temporary folder.</summary>
public sealed class InfluxServer : IDisposable
{
    private readonly TempDir _dir = new("influxd");
    private ServiceProcess? _process;

    /// <param name="httpSettings">Extra lines for the [http] section, e.g. auth-enabled = true.</param>
    public InfluxServer(string httpSettings = "")
    {
        Port = ServiceProcess.FreePort();
        int rpc = ServiceProcess.FreePort();
        // The same configuration as deploy/run-local.sh uses, copied next to the tests at build time.
        var template = System.IO.File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "influxdb.conf.template"));
        System.IO.File.WriteAllText(_dir.File("influxdb.conf"), template
            .Replace("@DATA@", _dir.Path).Replace("@HTTP_PORT@", Port.ToString()).Replace("@RPC_PORT@", rpc.ToString())
            .Replace("[http]\n", "[http]\n" + httpSettings + "\n"));
        Start();
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    public string Log => _process?.Output ?? "";

    /// <summary>Process id of the running influxd, for reading /proc.</summary>
    public int Pid => (_process ?? throw new InvalidOperationException("not started")).Id;

    public void Start()
    {
        _process?.Dispose();
        _process = ServiceProcess.Start("influxd", $"-config {_dir.File("influxdb.conf")}", _dir.Path);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                if (http.GetAsync(Url + "/ping").GetAwaiter().GetResult().IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (_process.HasExited) throw new InvalidOperationException("influxd exited at start:\n" + _process.Output);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("influxd did not answer /ping:\n" + _process.Output);
            Thread.Sleep(50);
        }
    }

    public void Stop() => _process?.Terminate(TimeSpan.FromSeconds(15));

    public InfluxClient Client(string database) => new(new InfluxOptions { Url = Url, Database = database, Gzip = false });

    /// <summary>Runs an InfluxQL query and returns the rows of the first series of the first statement.</summary>
    public async Task<List<Dictionary<string, JsonElement>>> RowsAsync(string database, string query)
    {
        using var client = Client(database);
        using var doc = await client.QueryAsync(query, database);
        var rows = new List<Dictionary<string, JsonElement>>();
        var result = doc.RootElement.GetProperty("results")[0];
        if (!result.TryGetProperty("series", out var series)) return rows;
        foreach (var s in series.EnumerateArray())
        {
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToArray();
            var tags = s.TryGetProperty("tags", out var t) ? t.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) : [];
            foreach (var v in s.GetProperty("values").EnumerateArray())
            {
                var row = new Dictionary<string, JsonElement>(tags);
                int i = 0;
                foreach (var cell in v.EnumerateArray()) row[columns[i++]] = cell.Clone();
                rows.Add(row);
            }
        }
        return rows;
    }

    /// <summary>Number of points in a measurement (count of a field every point has).</summary>
    public async Task<long> CountAsync(string database, string measurement, string field, string where = "")
    {
        try
        {
            var rows = await RowsAsync(database, $"SELECT count(\"{field}\") FROM \"{measurement}\"{(where.Length > 0 ? " WHERE " + where : "")}");
            return rows.Count == 0 ? 0 : rows[0]["count"].GetInt64();
        }
        catch (InvalidOperationException e) when (e.Message.Contains("database not found"))
        {
            return 0;
        }
    }

    public void Dispose()
    {
        _process?.Dispose();
        _dir.Dispose();
    }
}
