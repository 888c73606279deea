namespace CityGateway.Tests.Infrastructure;

/// <summary>
/// A real pseudo-terminal pair made by socat (pty,raw,echo=0 on both ends, linked at two paths):
/// what is written to one end is read at the other. Kill() tears it down, as an unplugged USB
/// adapter would; Start() makes it again at the same paths.
/// </summary>
public sealed class PtyPair : IDisposable
{
    private readonly TempDir _dir = new("pty");
    private ServiceProcess? _socat;

    public PtyPair()
    {
        GatewayEnd = _dir.File("ttyGateway");
        DeviceEnd = _dir.File("ttyDevice");
        Start();
    }

    /// <summary>The end the gateway reads.</summary>
    public string GatewayEnd { get; }

    /// <summary>The end the simulated instrument writes.</summary>
    public string DeviceEnd { get; }

    public void Start()
    {
        _socat?.Dispose();
        _socat = ServiceProcess.Start("socat",
            $"-d -d pty,raw,echo=0,link={GatewayEnd} pty,raw,echo=0,link={DeviceEnd}", _dir.Path);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(File.Exists(GatewayEnd) && File.Exists(DeviceEnd)))
        {
            if (_socat.HasExited) throw new InvalidOperationException("socat exited:\n" + _socat.Output);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("socat did not create the pty links:\n" + _socat.Output);
            Thread.Sleep(10);
        }
    }

    /// <summary>SIGKILL socat: both ends vanish.</summary>
    public void Kill()
    {
        _socat?.Kill();
        // socat removes its links on a clean exit only; after SIGKILL they dangle.
        foreach (var link in new[] { GatewayEnd, DeviceEnd })
            if (File.Exists(link) || new FileInfo(link).LinkTarget is not null) File.Delete(link);
    }

    public void Dispose()
    {
        Kill();
        _socat?.Dispose();
        _dir.Dispose();
    }
}
