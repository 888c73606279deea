using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;

namespace CityGateway.Benchmarks.E2e;

/// <summary>What the publisher process reported after the measured set.</summary>
internal sealed record PublishOutcome(long Published, long Completed, long Rejected, double Seconds, double CpuSeconds);

/// <summary>The parent's handle on a <see cref="PublishCommand"/> process.</summary>
internal sealed class PublisherProcess : IDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly StringBuilder _stderr = new();
    private volatile bool _finished;

    private PublisherProcess(Process process)
    {
        _process = process;
    }

    /// <summary>Set once the measured set is published and acknowledged (or the process is gone).</summary>
    public bool Finished => _finished || _process.HasExited;

    public static async Task<PublisherProcess> StartAsync(Workload workload, string brokerUrl, int qos)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(typeof(PublisherProcess).Assembly.Location);
        psi.ArgumentList.Add("publish");
        foreach (var a in workload.Arguments()) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "--broker", brokerUrl, "--qos", qos.ToString(), "--window", "10000" }) psi.ArgumentList.Add(a);
        var p = new Process { StartInfo = psi };
        var self = new PublisherProcess(p);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) self._lines.Writer.TryComplete();
            else self._lines.Writer.TryWrite(e.Data);
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (self._stderr) self._stderr.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        await self.ExpectAsync("ready", TimeSpan.FromSeconds(120));
        return self;
    }

    public async Task WarmAsync()
    {
        Send("warm");
        await ExpectAsync("warmed", TimeSpan.FromSeconds(300));
    }

    /// <summary>Starts the measured set; the caller starts its clock right before.</summary>
    public void Go() => Send("go");

    public async Task<PublishOutcome> DoneAsync(TimeSpan timeout)
    {
        try
        {
            var f = (await ExpectAsync("done", timeout)).Split(' ');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            return new PublishOutcome(long.Parse(f[1]), long.Parse(f[2]), long.Parse(f[3]), D(4), D(5));
        }
        finally
        {
            _finished = true;
        }
    }

    private void Send(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
    }

    private async Task<string> ExpectAsync(string word, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(cts.Token);
                if (line.StartsWith("error ", StringComparison.Ordinal)) throw new BenchmarkFailure("publisher: " + line[6..]);
                if (line == word || line.StartsWith(word + " ", StringComparison.Ordinal)) return line;
            }
        }
        catch (ChannelClosedException)
        {
            _finished = true;
            throw new BenchmarkFailure($"the publisher exited before '{word}': {Stderr}");
        }
        catch (OperationCanceledException)
        {
            throw new BenchmarkFailure($"the publisher did not say '{word}' within {timeout.TotalSeconds:F0} s: {Stderr}");
        }
    }

    private string Stderr
    {
        get { lock (_stderr) return _stderr.ToString().Trim(); }
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}

/// <summary>A case that did not complete correctly: reported as a failure, never as a rate.</summary>
internal sealed class BenchmarkFailure(string message) : Exception(message);
