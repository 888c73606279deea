using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace CityGateway.Tests.Infrastructure;

/// <summary>
/// The gateway as its own process (the built Gateway.dll), for what an in-process host cannot
/// show: kill -9, SIGTERM, and the process's own memory. Its journal and quarantine live in a
/// folder that survives restarts of the process.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly string[] _args;
    private readonly StringBuilder _log = new();
    private Process? _process;
    private long _peakRssKb;

    public GatewayProcess(string brokerUrl, string influxUrl, string database, string registryPath, string folder, params string[] extra)
    {
        Folder = folder;
        HttpPort = ServiceProcess.FreePort();
        OperatorPort = ServiceProcess.FreePort();
        _args =
        [
            "--urls", $"http://127.0.0.1:{HttpPort}",
            $"--Gateway:Operations:Listen=http://127.0.0.1:{OperatorPort}",
            "--Gateway:Mqtt:Url=" + brokerUrl,
            "--Gateway:Mqtt:ClientId=gwp-" + Guid.NewGuid().ToString("N")[..8],
            "--Gateway:Influx:Url=" + influxUrl,
            "--Gateway:Influx:Database=" + database,
            "--Gateway:Influx:FlushIntervalMs=200",
            "--Gateway:Influx:RetryMaxMs=2000",
            "--Gateway:Registry:Path=" + registryPath,
            "--Gateway:Quarantine:Path=" + Path.Combine(folder, "quarantine.jsonl"),
            "--Gateway:Journal:Path=" + Path.Combine(folder, "journal"),
            "--Gateway:SelfMetrics:IntervalSeconds=1",
            .. extra,
        ];
    }

    public string Folder { get; }

    /// <summary>The gateway to run: the one built with the tests, or another build (a benchmark's baseline).</summary>
    public string Dll { get; init; } = Path.Combine(AppContext.BaseDirectory, "Gateway.dll");

    public int HttpPort { get; }

    /// <summary>The partner listener.</summary>
    public string BaseUrl => $"http://127.0.0.1:{HttpPort}";

    public int OperatorPort { get; }

    /// <summary>The operator listener: quarantine API, /readyz with details, /metrics.</summary>
    public string OperatorUrl => $"http://127.0.0.1:{OperatorPort}";

    public int Starts { get; private set; }

    /// <summary>Highest resident set size (VmHWM) seen over every run of the process, in MiB.</summary>
    public double PeakRssMiB => Interlocked.Read(ref _peakRssKb) / 1024.0;

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public bool Running => _process is { HasExited: false };

    /// <summary>Process id of the current run, for reading /proc.</summary>
    public int Pid => (_process ?? throw new InvalidOperationException("not started")).Id;

    public async Task StartAsync(bool waitReady = true)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Folder,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in _args) psi.ArgumentList.Add(a);
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _process = p;
        Starts++;
        if (!waitReady) return;
        await Wait.UntilAsync(async () =>
        {
            if (p.HasExited) throw new InvalidOperationException($"the gateway exited with {p.ExitCode}:\n{Log}");
            SampleMemory();
            try
            {
                var (status, _) = await ReadyAsync();
                return status == 200;
            }
            catch (HttpRequestException) { return false; }
        }, TimeSpan.FromSeconds(60), () => "the gateway process did not become ready:\n" + Log);
    }

    public async Task<(int Status, JsonElement Body)> ReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var response = await http.GetAsync(OperatorUrl + "/readyz");
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>CPU time (user + system) the current process has used so far, from /proc/PID/stat.</summary>
    public double CpuSeconds() => ServiceProcess.CpuSeconds(Pid);

    /// <summary>Reads the process's peak RSS from /proc; call it often while it runs.</summary>
    public void SampleMemory()
    {
        var p = _process;
        if (p is null || p.HasExited) return;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{p.Id}/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
                long seen;
                while ((seen = Interlocked.Read(ref _peakRssKb)) < kb && Interlocked.CompareExchange(ref _peakRssKb, kb, seen) != seen) { }
            }
        }
        catch (IOException) { }
    }

    /// <summary>kill -9: no shutdown code runs.</summary>
    public void Kill()
    {
        SampleMemory();
        var p = _process;
        if (p is null || p.HasExited) return;
        p.Kill();
        p.WaitForExit(10_000);
    }

    /// <summary>SIGTERM, then wait for the orderly exit; returns the exit code.</summary>
    public int Terminate(TimeSpan timeout)
    {
        SampleMemory();
        var p = _process ?? throw new InvalidOperationException("not started");
        if (!p.HasExited)
        {
            Mono.Posix.Kill(p.Id, 15);
            if (!p.WaitForExit((int)timeout.TotalMilliseconds))
            {
                p.Kill();
                throw new TimeoutException($"the gateway did not stop within {timeout.TotalSeconds} s after SIGTERM:\n{Log}");
            }
        }
        p.WaitForExit();
        return p.ExitCode;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        return ValueTask.CompletedTask;
    }
}
