using System.Buffers;
using System.Collections.Concurrent;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Serial;

/// <summary>The state of one serial port, for /readyz and the gateway measurement.</summary>
public sealed class SerialPortStatus(string name, string path)
{
    public string Name { get; } = name;
    public string Path { get; } = path;
    public volatile bool Open;
    public volatile string State = "starting";
    public long Lines;
    public long Overlong;
    public long Bytes;
    /// <summary>How many times the port was opened; every open after the first is a reopen.</summary>
    public long Opens;

    public long Reopens => Math.Max(0, Interlocked.Read(ref Opens) - 1);
}

public sealed class SerialStatus
{
    public ConcurrentDictionary<string, SerialPortStatus> Ports { get; } = new();
}

/// <summary>
/// Reads every configured serial port on a thread of its own: lines are cut by the framer, stamped
/// with the receive time and appended to the journal, like MQTT messages. A port that is missing or
/// vanishes (USB unplugged) is reopened with capped backoff, without restarting anything. At the
/// journal's size bound the port is not read (the device's output waits in the tty's buffer).
/// </summary>
public sealed partial class SerialSource : BackgroundService, IFrameSource
{
    private readonly SerialOptions _options;
    private readonly IFrameLog _log;
    private readonly QuarantineStore _quarantine;
    private readonly GatewayMetrics _metrics;
    private readonly SerialStatus _status;
    private readonly ILogger<SerialSource> _logger;
    private readonly GatewayClock _clock;

    public SerialSource(IOptions<SerialOptions> options, IFrameLog log, QuarantineStore quarantine, GatewayMetrics metrics,
        SerialStatus status, GatewayClock clock, ILogger<SerialSource> logger)
    {
        _clock = clock;
        _options = options.Value;
        _log = log;
        _quarantine = quarantine;
        _metrics = metrics;
        _status = status;
        _logger = logger;
        foreach (var p in _options.Ports) _status.Ports[p.EffectiveName] = new SerialPortStatus(p.EffectiveName, p.Path);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loops = _options.Ports
            .Select(p => Task.Factory.StartNew(() => RunPort(p, _status.Ports[p.EffectiveName], stoppingToken),
                stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default))
            .ToArray();
        return Task.WhenAll(loops);
    }

    private void RunPort(SerialPortOptions options, SerialPortStatus status, CancellationToken ct)
    {
        var framer = new LineFramer(Math.Max(16, options.MaxLineBytes));
        var buffer = ArrayPool<byte>.Shared.Rent(8192);
        int coalesce = Math.Max(0, options.ReadCoalesceMs);
        var intake = new FrameIntake("serial", _log, _metrics, _clock, new PortEvents(this, options.EffectiveName));
        LineFramer.LineHandler onLine = (line, overlong, length) => OnLine(options, status, intake, line, overlong, length, ct);
        var delay = TimeSpan.FromMilliseconds(Math.Max(10, options.ReopenMinMs));
        var maxDelay = TimeSpan.FromMilliseconds(Math.Max(options.ReopenMinMs, options.ReopenMaxMs));
        string? lastError = null;
        while (!ct.IsCancellationRequested)
        {
            SerialPort port;
            try
            {
                port = SerialPort.Open(options.Settings);
            }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                status.Open = false;
                status.State = $"waiting for the device: {e.Message}";
                if (e.Message != lastError) LogOpenFailed(options.EffectiveName, e.Message, delay.TotalSeconds);
                lastError = e.Message;
                if (ct.WaitHandle.WaitOne(delay)) break;
                delay = TimeSpan.FromTicks(Math.Min(maxDelay.Ticks, delay.Ticks * 2));
                continue;
            }
            using (port)
            {
                lastError = null;
                delay = TimeSpan.FromMilliseconds(Math.Max(10, options.ReopenMinMs));
                status.Open = true;
                status.State = "open";
                Interlocked.Increment(ref status.Opens);
                LogOpened(options.EffectiveName, options.Path, options.BaudRate, options.Format, status.Reopens);
                framer.Reset();
                while (!ct.IsCancellationRequested)
                {
                    if (intake.AtBound)
                    {
                        // Stop reading: the device's output waits in the tty buffer (and, with flow control, at the device).
                        status.State = "paused: the journal is at its size bound";
                        try { intake.WaitForRoomAsync(ct).Wait(ct); } catch (OperationCanceledException) { break; }
                        status.State = "open";
                    }
                    var result = port.Read(buffer, 0, 8192, 200, out int n, out var error);
                    if (result == SerialReadStatus.Timeout) continue;
                    if (result == SerialReadStatus.Gone)
                    {
                        status.Open = false;
                        status.State = $"device lost: {error}; reopening";
                        LogLost(options.EffectiveName, options.Path, error ?? "");
                        break;
                    }
                    Interlocked.Add(ref status.Bytes, n);
                    framer.Push(buffer.AsSpan(0, n), onLine);
                    if (coalesce > 0 && n < 256) Thread.Sleep(coalesce); // a trickle at line speed, not a burst
                }
            }
            status.Open = false;
            if (!ct.IsCancellationRequested && ct.WaitHandle.WaitOne(delay)) break;
        }
        status.Open = false;
        status.State = "stopped";
        ArrayPool<byte>.Shared.Return(buffer);
        if (intake.Dropped > 0) LogDroppedAtShutdown(options.EffectiveName, intake.Dropped);
    }

    private void OnLine(SerialPortOptions options, SerialPortStatus status, FrameIntake intake, ReadOnlySpan<byte> line, bool overlong,
        long length, CancellationToken ct)
    {
        // The framer has already cut an overlong line to MaxLineBytes; length is what arrived.
        var frame = intake.Stamp(options.Topic, line, 0, (int)Math.Min(int.MaxValue, length));
        if (overlong)
        {
            Interlocked.Increment(ref status.Overlong);
            _quarantine.Add(QuarantineReasons.LineTooLong,
                $"a line of {length} bytes exceeds Gateway:Serial:Ports:{options.EffectiveName}:MaxLineBytes ({options.MaxLineBytes}); resynchronised at the next newline",
                frame, options.ToRoute().ToString());
            return;
        }
        Interlocked.Increment(ref status.Lines);
        // Holds this port's thread while the disk refuses the line; the tty buffers meanwhile.
        intake.Append(frame, ct);
    }

    /// <summary>One port's intake events, logged with the port's name.</summary>
    private sealed class PortEvents(SerialSource source, string name) : IFrameIntakeEvents
    {
        public void JournalWriteFailed(string error) => source.LogJournalWriteFailed(name, error);

        public void JournalWriteRecovered(int retries) => source.LogJournalWriteRecovered(name, retries);
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Serial port {Name} open: {Path} at {Baud} baud, format {Format} (reopened {Reopens} times before)")]
    private partial void LogOpened(string name, string path, int baud, string format, long reopens);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "Serial port {Name} cannot be opened: {Error}; retrying in {Seconds} s and with backoff")]
    private partial void LogOpenFailed(string name, string error, double seconds);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Serial port {Name} ({Path}) lost: {Error}; reopening with backoff")]
    private partial void LogLost(string name, string path, string error);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Critical, Message = "Serial port {Name}: cannot append to the journal: {Error}; holding the line and retrying every second")]
    private partial void LogJournalWriteFailed(string name, string error);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "Serial port {Name}: journal append succeeded again after {Retries} retries")]
    private partial void LogJournalWriteRecovered(string name, int retries);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Error, Message = "Serial port {Name}: {Count} lines could not be put in the journal (shutdown or disk failure)")]
    private partial void LogDroppedAtShutdown(string name, long count);
}
