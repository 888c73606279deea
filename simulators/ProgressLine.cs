using System.Globalization;

namespace CityGateway.Simulators;

/// <summary>A single status line on stderr, redrawn at most four times a second, shown only when
/// stderr is a terminal. Log lines printed through it do not get mixed into the status line.</summary>
internal sealed class ProgressLine : IDisposable
{
    private readonly object _lock = new();
    private readonly Func<string> _render;
    private readonly Timer? _timer;
    private int _lastLength;
    private bool _disposed;

    public ProgressLine(bool enabled, Func<string> render)
    {
        _render = render;
        Enabled = enabled && !Console.IsErrorRedirected;
        if (Enabled) _timer = new Timer(_ => Draw(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    public bool Enabled { get; }

    /// <summary>Hands a message to <paramref name="sink"/> with the status line cleared, so that the
    /// message gets a line of its own and the status line is redrawn below it.</summary>
    public void Log(Action<string> sink, string message)
    {
        lock (_lock)
        {
            Clear();
            sink(message);
        }
    }

    private void Draw()
    {
        lock (_lock)
        {
            if (_disposed) return;
            string line;
            try { line = _render(); } catch { return; }
            int width = 0;
            try { width = Console.WindowWidth; } catch (IOException) { width = 0; /* not a console: lines are not cut */ }
            if (width > 1 && line.Length >= width) line = line[..(width - 1)];
            Console.Error.Write("\r" + line + new string(' ', Math.Max(0, _lastLength - line.Length)));
            _lastLength = line.Length;
        }
    }

    private void Clear()
    {
        if (_lastLength == 0) return;
        Console.Error.Write("\r" + new string(' ', _lastLength) + "\r");
        _lastLength = 0;
    }

    public void Dispose()
    {
        _timer?.Dispose();
        lock (_lock)
        {
            _disposed = true;
            Clear();
        }
    }

    /// <summary>"[00:01:02] backfill 1200/3600  acked ..." while backfilling, "[..] published 40/300 ..." live.</summary>
    public static string Format(TimeSpan elapsed, string phase, long published, long target, long acknowledged, long outstanding, long failed, bool connected, int qos)
    {
        var c = CultureInfo.InvariantCulture;
        double rate = elapsed.TotalSeconds > 0.5 ? published / elapsed.TotalSeconds : 0;
        string of = target > 0 ? string.Create(c, $"/{target}") : "";
        string acks = qos > 0 ? string.Create(c, $"  acked {acknowledged}") : "";
        return string.Create(c,
            $"[{elapsed:hh\\:mm\\:ss}] {phase} {published}{of}{acks}  in flight {outstanding}  failed {failed}  {rate:0.0} msg/s{(connected ? "" : "  (disconnected)")}");
    }
}
