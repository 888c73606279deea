using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CityGateway.Tests.Infrastructure;

/// <summary>A real service binary (mosquitto, influxd) started by a test on loopback, output captured.</summary>
public sealed class ServiceProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServiceProcess(Process process)
    {
        _process = process;
    }

    public static ServiceProcess Start(string file, string arguments, string workingDirectory) =>
        Start(file, arguments, workingDirectory, null);

    /// <summary>As <see cref="Start(string, string, string)"/>, with these environment variables set (a null value removes one).</summary>
    public static ServiceProcess Start(string file, string arguments, string workingDirectory, IReadOnlyDictionary<string, string?>? environment)
    {
        var path = Which(file) ?? throw new InvalidOperationException(
            $"'{file}' is not installed. Run deploy/test.sh, which installs the test dependencies (mosquitto, influxdb, socat).");
        var psi = new ProcessStartInfo(path, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        }
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var sp = new ServiceProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sp._output) sp._output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sp._output) sp._output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return sp;
    }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>CPU time (user + system) this process has used so far.</summary>
    public double CpuSeconds() => CpuSeconds(_process.Id);

    /// <summary>CPU time (user + system) a live process has used so far, from /proc/PID/stat.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // Fields after the command name (which may contain spaces) start after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(fields[11]) + long.Parse(fields[12]); // utime, stime (fields 14 and 15)
        return ticks / 100.0; // USER_HZ is 100 on Linux
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>Sends a signal (2 SIGINT, 15 SIGTERM, ...).</summary>
    public void Signal(int signal) => Mono.Posix.Kill(_process.Id, signal);

    /// <summary>Waits for the process to exit and its output to be read; false when it is still running after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); return true; }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>SIGKILL, as a crash or power cut would.</summary>
    public void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM and wait, for an orderly stop.</summary>
    public void Terminate(TimeSpan timeout)
    {
        if (_process.HasExited) return;
        Mono.Posix.Kill(_process.Id, 15);
        if (!_process.WaitForExit((int)timeout.TotalMilliseconds)) Kill();
        // Exited: this overload also waits until the output is read to its end, so what the
        // process wrote last (an error while saving, say) is in Output when this returns.
        else _process.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    public static string? Which(string file)
    {
        if (file.Contains('/')) return File.Exists(file) ? file : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/sbin", "/usr/bin"]);
        return dirs.Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// A loopback TCP port that is free right now, below the kernel's ephemeral range (32768 and
    /// up on Linux): a port from that range, once released, can be taken by the source end of any
    /// outgoing connection before the listener it was meant for binds it. Ports are handed out in
    /// turn from a random start, so two callers in one run do not get the same one.
    /// </summary>
    public static int FreePort()
    {
        for (int attempt = 0; attempt < 2000; attempt++)
        {
            int port = LowPortStart + (int)((uint)Interlocked.Increment(ref s_nextPort) % (uint)LowPortCount);
            try
            {
                using var l = new TcpListener(IPAddress.Loopback, port);
                l.Start();
                return port;
            }
            catch (SocketException) { }
        }
        using var any = new TcpListener(IPAddress.Loopback, 0);
        any.Start();
        return ((IPEndPoint)any.LocalEndpoint).Port;
    }

    private const int LowPortStart = 20000, LowPortCount = 12000;
    private static int s_nextPort = Random.Shared.Next(LowPortCount);

    public static bool PortOpen(int port)
    {
        try
        {
            using var c = new TcpClient();
            c.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

internal static partial class Mono
{
    internal static partial class Posix
    {
        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        internal static partial int Kill(int pid, int signal);
    }
}
