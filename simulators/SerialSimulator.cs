using System.Diagnostics;
using System.Globalization;
using CityGateway.Normalisation;
using CityGateway.Sources.Serial;

namespace CityGateway.Simulators;

/// <summary>
/// Simulates instruments sharing a serial line: a water-quality instrument writing key=value lines,
/// a traffic counter writing CSV lines or an air-quality station writing JSON lines, each line
/// optionally checksummed (NMEA-style "*hh"), with seeded line noise and split writes.
/// </summary>
public static class SerialSimulator
{
    /// <summary>The devices the options describe, in the order they take turns on the line.</summary>
    public static IReadOnlyList<SerialDevice> CreateDevices(SerialSimulatorOptions o)
    {
        o.Validate(needPort: false);
        return SerialDevice.CreateAll(o);
    }

    /// <summary>The device registry for the serial devices: their device type with its field mappings
    /// and units ("seq" as a custom integer), and every device keyed by its id.</summary>
    public static DeviceRegistryFile BuildRegistry(SerialSimulatorOptions o)
    {
        var devices = CreateDevices(o);
        var type = SerialDeviceTypes.ForFormat(o.NormalisedFormat());
        var entry = new DeviceTypeEntry { Domain = type.Domain };
        foreach (var f in type.Fields)
            entry.Fields[f.Name] = new FieldMapping { Metric = f.Metric, Unit = f.Unit };
        entry.Fields[DeviceTypes.SequenceField] = new FieldMapping { Metric = DeviceTypes.SequenceField, Custom = true, Type = "integer" };
        var registry = new DeviceRegistryFile { City = o.City };
        registry.DeviceTypes[type.Name] = entry;
        foreach (var d in devices)
        {
            registry.Devices[d.Id] = new DeviceEntry
            {
                Type = type.Name,
                District = d.District,
                Site = d.Site,
                Latitude = d.Latitude,
                Longitude = d.Longitude,
            };
        }
        return registry;
    }

    /// <summary>
    /// Produces the lines of a run without a port: line k is produced at <paramref name="start"/> +
    /// k * <paramref name="interval"/> (the csv timestamps and, without a curve time, the values depend
    /// on it). Ends when every device has taken <see cref="SerialSimulatorOptions.MessagesPerDevice"/>
    /// readings or <see cref="SerialSimulatorOptions.Duration"/> of simulated time has passed; without
    /// either it does not end. The same options give the same lines as <see cref="RunAsync"/> writes,
    /// apart from timestamps and the readings lost while a port is away.
    /// </summary>
    public static IEnumerable<SerialLine> Generate(SerialSimulatorOptions o, DateTimeOffset start, TimeSpan interval)
    {
        o.Validate(needPort: false);
        var source = new SerialLineSource(o);
        long startMs = start.ToUnixTimeMilliseconds();
        for (long k = 0; ; k++)
        {
            var offset = interval * k;
            if (o.Duration is { } duration && offset >= duration) yield break;
            var line = source.Next(startMs + (long)offset.TotalMilliseconds);
            if (line is null) yield break;
            yield return line;
        }
    }

    /// <summary>
    /// Writes the registry (when <see cref="SerialSimulatorOptions.RegistryPath"/> is set), opens the
    /// port (retrying for up to <see cref="SerialSimulatorOptions.OpenTimeout"/>), writes lines until
    /// the limits are reached or <paramref name="ct"/> is cancelled, and returns the report (also
    /// written to <see cref="SerialSimulatorOptions.ReportPath"/>). <paramref name="onLine"/> is called
    /// on the writing thread after each line has been written completely. When the port disappears
    /// the lines falling due meanwhile are counted as lost and the port is reopened every
    /// <see cref="SerialSimulatorOptions.ReconnectInterval"/>. Throws <see cref="IOException"/> when the
    /// port cannot be opened at the start.
    /// </summary>
    public static Task<SerialSimulationReport> RunAsync(SerialSimulatorOptions o, Action<SerialLine>? onLine = null, CancellationToken ct = default) =>
        Task.Factory.StartNew(() =>
        {
            o.Validate();
            var source = new SerialLineSource(o);
            if (!string.IsNullOrEmpty(o.RegistryPath)) FleetSimulator.WriteRegistry(BuildRegistry(o), o.RegistryPath);
            var report = new SerialRun(o, source, onLine).Run(ct);
            if (!string.IsNullOrEmpty(o.ReportPath))
            {
                var dir = Path.GetDirectoryName(Path.GetFullPath(o.ReportPath));
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                File.WriteAllText(o.ReportPath, report.ToJson() + "\n");
            }
            return report;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}

/// <summary>One run against a port: pacing, writing, losing and regaining the port, counting.</summary>
internal sealed class SerialRun
{
    // How long a stopped run may take to finish the line in progress before the port is closed under it
    // (a reader that stopped reading leaves the writer waiting for room in the output queue).
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(1);

    private readonly SerialSimulatorOptions _o;
    private readonly SerialLineSource _source;
    private readonly Action<SerialLine>? _onLine;
    private readonly SerialSimulationReport _report;
    private readonly Stopwatch _clock = new();
    private readonly object _portLock = new();
    private readonly int _chunkBytes;
    private Action<string> _log = _ => { };
    private SerialPort? _port;
    private bool _finished;
    private double _wireAt;        // clock seconds at which the simulated wire is free again (throttle)
    private double _lastAttempt;   // clock seconds of the last attempt to reopen the port
    private double _goneAt;
    private long _lostAtGone;

    public SerialRun(SerialSimulatorOptions o, SerialLineSource source, Action<SerialLine>? onLine)
    {
        _o = o;
        _source = source;
        _onLine = onLine;
        _chunkBytes = Math.Max(1, (int)Math.Ceiling(o.LineBytesPerSecond * 0.002));
        _report = new SerialSimulationReport
        {
            Port = o.Port,
            Format = source.Format,
            DeviceType = SerialDeviceTypes.ForFormat(source.Format).Name,
            City = o.City,
            Seed = o.Seed,
            Devices = source.Devices.Count,
            BaudRate = o.BaudRate,
            Throttle = o.Throttle,
            Checksum = o.Checksum,
            LineEnding = o.LineEnding == SerialSimulatorOptions.Lf ? "lf" : "crlf",
            Rate = o.Rate,
        };
        foreach (var kind in SerialCorruption.All) _report.CorruptedByKind[kind] = 0;
        foreach (var d in source.Devices) _report.ByDevice[d.Id] = 0;
        _report.ExpectedPoints[SerialDeviceTypes.ForFormat(source.Format).Domain] = 0;
    }

    private double Seconds => _clock.Elapsed.TotalSeconds;

    public SerialSimulationReport Run(CancellationToken ct)
    {
        using var progress = new ProgressLine(_o.Progress, Render);
        var sink = _o.Log;
        _log = sink is null ? _ => { } : progress.Enabled ? msg => progress.Log(sink, msg) : sink;

        _report.StartedAt = DateTimeOffset.UtcNow;
        try
        {
            OpenFirst(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _report.Cancelled = true;
            _report.FinishedAt = _report.StartedAt = DateTimeOffset.UtcNow;
            return _report;
        }

        _report.StartedAt = DateTimeOffset.UtcNow;
        _clock.Restart();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (_o.Duration is { } duration) stop.CancelAfter(duration);
        using var rescue = new Timer(_ => Abort(), null, Timeout.Infinite, Timeout.Infinite);
        using (stop.Token.Register(() => rescue.Change(StopGrace, Timeout.InfiniteTimeSpan)))
        {
            try
            {
                Loop(stop.Token);
            }
            finally
            {
                lock (_portLock)
                {
                    _finished = true;
                    _port?.Dispose();
                    _port = null;
                }
            }
        }
        _report.FinishedAt = DateTimeOffset.UtcNow;
        _report.Cancelled = ct.IsCancellationRequested;
        return _report;
    }

    private void Loop(CancellationToken stop)
    {
        // Line k is due at origin + k / rate. After a stall the origin moves forward instead of
        // bursting to catch up.
        double origin = 0;
        long k = 0;
        bool scheduled = _o.Rate > 0 || _o.Throttle;
        while (!stop.IsCancellationRequested && !_source.Finished)
        {
            if (_o.Rate > 0)
            {
                double due = origin + k / _o.Rate;
                double now = Seconds;
                if (now - due > 1.0) origin += now - due;
                else if (!WaitUntil(due, stop)) break;
            }
            if (_o.Throttle && !WaitUntil(WireStart(), stop)) break;

            if (_port is null)
            {
                // Without a schedule nothing falls due while the port is away: wait for it.
                if (!scheduled) { if (!WaitReopen(stop)) break; }
                else TryReopen();
            }

            var line = _source.Next(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            if (line is null) break;
            k++;

            var port = _port;
            if (port is null)
            {
                // The instrument keeps sending while nothing is connected: the line is lost.
                _report.LinesLost++;
                if (_o.Throttle) Reserve(line.Text.Length);
                continue;
            }
            if (!Write(port, line, stop)) continue;

            _report.LinesWritten++;
            if (line.Intact)
            {
                _report.IntactLines++;
                _report.ByDevice[line.Device!]++;
                _report.ExpectedPoints[line.Domain!]++;
                if (line.Writes > 1) _report.SplitLines++;
            }
            else
            {
                _report.CorruptedLines++;
                _report.CorruptedByKind[line.Corruption!]++;
            }
            _onLine?.Invoke(line);
        }
    }

    /// <summary>Writes the line in its planned pieces; false when the port went away (the line is lost).</summary>
    private bool Write(SerialPort port, SerialLine line, CancellationToken stop)
    {
        var text = line.Text;
        int start = 0;
        try
        {
            for (int piece = 0; piece <= line.SplitAt.Length; piece++)
            {
                int end = piece < line.SplitAt.Length ? line.SplitAt[piece] : text.Length;
                if (piece > 0) Thread.Sleep(line.PausesMs[piece - 1]);
                WriteBytes(port, text.AsSpan(start, end - start));
                start = end;
            }
            return true;
        }
        catch (IOException e)
        {
            _report.LinesLost++;
            Gone(port, e, stop);
            return false;
        }
    }

    private void WriteBytes(SerialPort port, ReadOnlySpan<byte> bytes)
    {
        if (!_o.Throttle)
        {
            port.Write(bytes);
            _report.BytesWritten += bytes.Length;
            return;
        }
        // As on a real line the bytes trickle out: chunks of about 2 ms of line time, each sent when
        // the wire has carried the one before.
        for (int at = 0; at < bytes.Length; at += _chunkBytes)
        {
            var chunk = bytes.Slice(at, Math.Min(_chunkBytes, bytes.Length - at));
            double wait = Reserve(chunk.Length) - Seconds;
            if (wait > 0.001) Thread.Sleep(TimeSpan.FromSeconds(wait));
            port.Write(chunk);
            _report.BytesWritten += chunk.Length;
        }
    }

    /// <summary>When the wire is free for the next bytes. An idle or stalled wire (more than 50 ms
    /// behind) starts afresh from now; small delays are made up.</summary>
    private double WireStart()
    {
        double now = Seconds;
        if (now - _wireAt > 0.05) _wireAt = now;
        return _wireAt;
    }

    /// <summary>Books <paramref name="bytes"/> on the wire; returns when they may start.</summary>
    private double Reserve(int bytes)
    {
        double start = WireStart();
        _wireAt = start + bytes / _o.LineBytesPerSecond;
        return start;
    }

    private SerialPort Open() => SerialPort.Open(new SerialPortSettings { Path = _o.Port, BaudRate = _o.BaudRate }, write: true);

    private void OpenFirst(CancellationToken ct)
    {
        var waited = Stopwatch.StartNew();
        bool announced = false;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                _port = Open();
                if (announced) _log($"{_o.Port} opened after {waited.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
                return;
            }
            catch (IOException e)
            {
                if (waited.Elapsed >= _o.OpenTimeout)
                    throw new IOException($"{e.Message} (gave up after {_o.OpenTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s)", e);
                if (!announced) _log($"waiting for {_o.Port}: {e.Message}");
                announced = true;
            }
            if (ct.WaitHandle.WaitOne(_o.ReconnectInterval)) ct.ThrowIfCancellationRequested();
        }
    }

    private void Gone(SerialPort port, IOException e, CancellationToken stop)
    {
        lock (_portLock)
        {
            port.Dispose();
            if (ReferenceEquals(_port, port)) _port = null;
        }
        if (stop.IsCancellationRequested) return;
        _goneAt = _lastAttempt = Seconds;
        _lostAtGone = _report.LinesLost - 1;
        _log($"{_o.Port} is gone ({e.Message}); reopening every {_o.ReconnectInterval.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)} ms");
    }

    /// <summary>Tries to reopen the port when the reconnect interval has passed since the last attempt.</summary>
    private bool TryReopen()
    {
        if (_port is not null) return true;
        double now = Seconds;
        if (now - _lastAttempt < _o.ReconnectInterval.TotalSeconds) return false;
        _lastAttempt = now;
        SerialPort port;
        try
        {
            port = Open();
        }
        catch (IOException)
        {
            return false;
        }
        lock (_portLock)
        {
            if (_finished)
            {
                port.Dispose();
                return false;
            }
            _port = port;
        }
        _report.Reconnects++;
        _log(string.Create(CultureInfo.InvariantCulture,
            $"{_o.Port} is back after {now - _goneAt:0.0} s; {_report.LinesLost - _lostAtGone} lines not written meanwhile"));
        return true;
    }

    /// <summary>Waits until clock time <paramref name="at"/>, trying to reopen a vanished port meanwhile;
    /// false when the run is stopped.</summary>
    private bool WaitUntil(double at, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (_port is null) TryReopen();
            double now = Seconds;
            double wait = at - now;
            if (wait <= 0.001) return true;
            if (_port is null) wait = Math.Min(wait, Math.Max(0.001, _lastAttempt + _o.ReconnectInterval.TotalSeconds - now));
            if (!Sleep(wait, stop)) return false;
        }
        return false;
    }

    private bool WaitReopen(CancellationToken stop)
    {
        while (!TryReopen())
        {
            double wait = _lastAttempt + _o.ReconnectInterval.TotalSeconds - Seconds;
            if (!Sleep(Math.Max(wait, 0.001), stop)) return false;
        }
        return true;
    }

    /// <summary>Closes the port under a writer that did not finish within the grace period after the
    /// stop, so that a write waiting for room in the output queue fails and the run can end.</summary>
    private void Abort()
    {
        lock (_portLock)
        {
            if (_finished) return;
            _port?.Dispose();
        }
    }

    private static bool Sleep(double seconds, CancellationToken token)
    {
        if (seconds <= 0) return !token.IsCancellationRequested;
        return !token.WaitHandle.WaitOne(TimeSpan.FromSeconds(seconds));
    }

    private string Render()
    {
        var c = CultureInfo.InvariantCulture;
        var elapsed = _clock.Elapsed;
        double s = elapsed.TotalSeconds;
        double lines = s > 0.5 ? _report.LinesWritten / s : 0, bytes = s > 0.5 ? _report.BytesWritten / s : 0;
        return string.Create(c,
            $"[{elapsed:hh\\:mm\\:ss}] lines {_report.LinesWritten}  intact {_report.IntactLines}  corrupted {_report.CorruptedLines}  lost {_report.LinesLost}  {lines:0.0} lines/s  {bytes:0} B/s{(_port is null ? "  (port gone)" : "")}");
    }
}
