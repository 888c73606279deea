using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Quarantine;
using Microsoft.Extensions.Options;

namespace CityGateway.Storage.Influx;

/// <summary>
/// Batches points and writes them: whole frames where they fit, the rest of a frame in the next
/// batch; the journal commits a frame only once every point of it is stored. The status code
/// decides: 2xx done; 413 split the batch; 400/422 (a point InfluxDB refuses) split until the offending points are
/// isolated, quarantine them with the server's message, keep the rest; 401/403 stop and retry
/// slowly, loudly; 429/5xx/network errors back off with jitter (Retry-After respected) and retry
/// the same batch, so data waits in the queues and the broker rather than being dropped.
/// </summary>
public sealed partial class InfluxWriterService : BackgroundService
{
    private readonly ChannelReader<FramePoints> _frames;
    private readonly ChannelReader<Point> _points;
    private readonly ChannelReader<Point> _self;
    private readonly IFrameLog _log;
    private readonly InfluxClient _client;
    private readonly InfluxOptions _options;
    private readonly QuarantineStore _quarantine;
    private readonly GatewayMetrics _metrics;
    private readonly InfluxState _influx;
    private readonly ILogger<InfluxWriterService> _logger;
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private readonly LineArena _pipelineLines;
    /// <summary>Lines of the points that come unencoded (self-metrics, exchange, federation).</summary>
    private readonly LineArena _ownLines = new();
    private readonly TimeSpan _interval;
    private readonly TimeSpan _linger;
    private CancellationTokenSource _tick = new();
    /// <summary>The frame whose points are being batched; its rest goes in the next batch.</summary>
    private FramePoints _carry;
    private int _carryTaken;

    public InfluxWriterService(WriterQueues channels, IFrameLog log, InfluxClient client, IOptions<InfluxOptions> options,
        QuarantineStore quarantine, GatewayMetrics metrics, InfluxState influx, ILogger<InfluxWriterService> logger)
    {
        _frames = channels.Frames.Reader;
        _points = channels.Points.Reader;
        _interval = TimeSpan.FromMilliseconds(Math.Max(10, options.Value.FlushIntervalMs));
        _linger = TimeSpan.FromMilliseconds(options.Value.LingerMs);
        _pipelineLines = channels.Lines;
        _self = channels.SelfMetrics.Reader;
        _log = log;
        _client = client;
        _options = options.Value;
        _quarantine = quarantine;
        _metrics = metrics;
        _influx = influx;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Task.Run(() => PingLoopAsync(stoppingToken), CancellationToken.None);
        await EnsureDatabaseAsync(stoppingToken);
        var batch = new List<EncodedPoint>(_options.BatchSize);
        bool commitStopped = false;
        // Whatever gathered while the previous write was in flight (and at least LingerMs since it
        // began) is the next batch: small batches and short delays at low load, full batches at high load. The loop ends when the pipeline
        // completes its channel (shutdown), after writing what is left.
        long lastWrite = 0;
        while (await WaitForWorkAsync())
        {
            // Below a full batch, let points gather until LingerMs after the previous write began:
            // a bounded delay that keeps the number of writes (and InfluxDB's work) in proportion.
            var since = Stopwatch.GetElapsedTime(lastWrite);
            if (since < _linger && _carry.Lines is null && _frames.Count < _options.BatchSize)
                await Task.Delay(_linger - since, CancellationToken.None);
            lastWrite = Stopwatch.GetTimestamp();
            long stored = Fill(batch);
            bool written = batch.Count == 0 || await WriteBatchAsync(batch, stoppingToken);
            // A batch not written (shutdown with InfluxDB down) stays in the journal, and so must
            // everything after it: committing a later frame would commit this one too.
            if (!written) commitStopped = true;
            // Only now may the journal forget these frames; a batch not stored stays for the next start.
            if (written && !commitStopped && stored >= 0) _log.Commit(stored);
            Release(batch);
            batch.Clear();
        }
        LogStopped(_metrics.PointsWritten);
    }

    /// <summary>True when there is something to write, or the flush interval passed (the gateway's
    /// own metrics and exchange points go out then); false once the pipeline is done and all is written.</summary>
    private async ValueTask<bool> WaitForWorkAsync()
    {
        if (_carry.Lines is not null || _frames.TryPeek(out _) || _points.TryPeek(out _)) return true;
        try
        {
            _tick.CancelAfter(_interval);
            bool more = await _frames.WaitToReadAsync(_tick.Token);
            return more || _points.TryPeek(out _);
        }
        catch (OperationCanceledException) { return true; }
        finally
        {
            if (!_tick.TryReset()) _tick = new CancellationTokenSource();
        }
    }

    /// <summary>
    /// Fills <paramref name="batch"/> with up to BatchSize points of whole or partial frames, then
    /// exchange points and the gateway's own metrics. A frame whose points do not all fit goes on in
    /// the next batch. Returns the sequence of the last frame all of whose points are now in a batch
    /// (this one or an earlier one), or -1 when this batch completes none.
    /// </summary>
    private long Fill(List<EncodedPoint> batch)
    {
        long complete = -1;
        int size = _options.BatchSize;
        while (batch.Count < size)
        {
            if (_carry.Lines is null)
            {
                if (!_frames.TryRead(out var next)) break;
                _carry = next;
                _carryTaken = 0;
            }
            int take = Math.Min(_carry.Count - _carryTaken, size - batch.Count);
            for (int i = 0; i < take; i++) batch.Add(_carry.Lines[_carryTaken + i]);
            _carryTaken += take;
            if (_carryTaken < _carry.Count) break;
            complete = _carry.Sequence;
            if (_carry.Count > 0)
            {
                Array.Clear(_carry.Lines, 0, _carry.Count);
                ArrayPool<EncodedPoint>.Shared.Return(_carry.Lines);
            }
            _carry = default;
        }
        while (batch.Count < size && _points.TryRead(out var point)) batch.Add(_ownLines.Append(point));
        while (batch.Count < size * 2 && _self.TryRead(out var own)) batch.Add(_ownLines.Append(own));
        return complete;
    }

    /// <summary>The batch's lines are done with: their chunks go back for reuse.</summary>
    private void Release(List<EncodedPoint> batch)
    {
        LineChunk? pipeline = null, own = null;
        for (int i = batch.Count - 1; i >= 0 && (pipeline is null || own is null); i--)
        {
            var chunk = batch[i].Chunk!;
            if (pipeline is null && chunk.Arena == _pipelineLines) pipeline = chunk;
            else if (own is null && chunk.Arena == _ownLines) own = chunk;
        }
        if (pipeline is not null) _pipelineLines.Release(pipeline);
        if (own is not null) _ownLines.Release(own);
    }

    private async Task EnsureDatabaseAsync(CancellationToken ct)
    {
        if (_options.Version != "v1" || !_options.CreateDatabase) return;
        var delay = TimeSpan.FromMilliseconds(_options.RetryMinMs);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _client.EnsureDatabaseAsync(ct);
                return;
            }
            catch (HttpRequestException e) when (e.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
            {
                LogCreateDatabaseForbidden(_options.Database, e.Message);
                return; // writes will surface the credential problem
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                LogCreateDatabaseRetry(_options.Database, e.Message);
                try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { return; }
                delay = TimeSpan.FromMilliseconds(Math.Min(_options.RetryMaxMs, delay.TotalMilliseconds * 2));
            }
        }
    }

    /// <summary>Writes the batch until InfluxDB has taken or refused every point in it; false when
    /// shutdown came first (the points stay in the journal).</summary>
    private async Task<bool> WriteBatchAsync(List<EncodedPoint> batch, CancellationToken stoppingToken)
    {
        var pending = new Stack<ArraySegment<EncodedPoint>>();
        pending.Push(new ArraySegment<EncodedPoint>(batch.ToArray()));
        var delay = TimeSpan.FromMilliseconds(_options.RetryMinMs);
        // After shutdown was requested, keep trying for a bounded time (the host's shutdown timeout
        // ends us otherwise), then give up and say how many points were not written.
        while (pending.TryPop(out var part))
        {
            _buffer.Clear();
            foreach (var p in part) _buffer.Write(p.Line);
            var started = Stopwatch.GetTimestamp();
            var result = await _client.WriteAsync(_buffer.WrittenMemory, CancellationToken.None);
            switch (result.Outcome)
            {
                case WriteOutcome.Accepted:
                    _metrics.BatchWritten(part.Count, Stopwatch.GetElapsedTime(started));
                    WriteAnswered("writes accepted");
                    delay = TimeSpan.FromMilliseconds(_options.RetryMinMs);
                    break;
                case WriteOutcome.TooLarge when part.Count > 1:
                case WriteOutcome.Rejected when part.Count > 1:
                    // Splitting isolates the points InfluxDB refuses; re-writing the accepted ones is
                    // harmless (same series and timestamp overwrite identical values).
                    int half = part.Count / 2;
                    pending.Push(part[half..]);
                    pending.Push(part[..half]);
                    break;
                case WriteOutcome.TooLarge:
                case WriteOutcome.Rejected:
                    var point = part[0];
                    _quarantine.Add(new QuarantineEntry
                    {
                        Time = DateTimeOffset.UtcNow,
                        Reason = QuarantineReasons.RejectedByInflux,
                        Detail = $"HTTP {result.StatusCode}: {result.Message}",
                        Source = "influx",
                        Topic = point.Origin,
                        Device = point.Device,
                        Payload = System.Text.Encoding.UTF8.GetString(_buffer.WrittenSpan).TrimEnd('\n'),
                        PayloadBytes = _buffer.WrittenCount,
                    });
                    WriteAnswered("reachable");
                    break;
                case WriteOutcome.Unauthorised:
                case WriteOutcome.Retry:
                    _metrics.WriteFailed();
                    var failure = result.StatusCode == 0 ? result.Message : $"HTTP {result.StatusCode}: {result.Message}";
                    _writeFailing = true;
                    if (result.Outcome == WriteOutcome.Unauthorised)
                    {
                        LogUnauthorised(result.StatusCode, _client.WriteEndpoint, result.Message);
                        if (_influx.Unauthorised(failure)) LogInfluxState("unreachable", failure);
                    }
                    else
                    {
                        LogWriteRetry(result.StatusCode, result.Message, part.Count);
                        if (_influx.Unreachable(failure)) LogInfluxState("unreachable", failure);
                    }
                    if (stoppingToken.IsCancellationRequested)
                    {
                        LogGaveUp(part.Count + pending.Sum(s => s.Count));
                        return false;
                    }
                    var wait = result.RetryAfter is { } ra && ra > TimeSpan.Zero
                        ? TimeSpan.FromMilliseconds(Math.Min(ra.TotalMilliseconds, _options.RetryMaxMs))
                        : Jitter(delay);
                    // Shutdown cuts the wait short; the next attempt then reports what is left.
                    await Task.Delay(wait, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    delay = TimeSpan.FromMilliseconds(Math.Min(_options.RetryMaxMs, delay.TotalMilliseconds * 2));
                    pending.Push(part);
                    break;
            }
        }
        return true;
    }

    private static TimeSpan Jitter(TimeSpan d) => TimeSpan.FromMilliseconds(d.TotalMilliseconds * (0.5 + Random.Shared.NextDouble() / 2));

    private volatile bool _writeFailing;

    /// <summary>A write InfluxDB answered on its merits (accepted or rejected points).</summary>
    private void WriteAnswered(string detail)
    {
        _writeFailing = false;
        if (_influx.Reachable(detail)) LogInfluxState("reachable", detail);
    }

    private async Task PingLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var (ok, detail) = await _client.PingAsync(ct);
            if (ct.IsCancellationRequested) break;
            // A ping proves reachability only; while writes fail, the write result decides.
            if (!ok)
            {
                if (_influx.Unreachable(detail)) LogInfluxState("unreachable", detail);
            }
            else if (!_writeFailing && !_influx.IsReachable)
            {
                if (_influx.Reachable("ping " + detail)) LogInfluxState("reachable", "ping " + detail);
            }
            try { await Task.Delay(TimeSpan.FromSeconds(2), ct); } catch (OperationCanceledException) { break; }
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "InfluxDB write failed (HTTP {Status}): {Error}; retrying {Points} points with backoff")]
    private partial void LogWriteRetry(int status, string error, int points);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "InfluxDB refused the credentials (HTTP {Status}) at {Endpoint}: {Error}. Writing is stopped until they are accepted; data is kept")]
    private partial void LogUnauthorised(int status, string endpoint, string error);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "InfluxDB is {State}: {Detail}")]
    private partial void LogInfluxState(string state, string detail);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Cannot create database {Database} yet: {Error}; retrying")]
    private partial void LogCreateDatabaseRetry(string database, string error);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Error, Message = "Not allowed to create database {Database}: {Error}")]
    private partial void LogCreateDatabaseForbidden(string database, string error);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error, Message = "Shutting down with InfluxDB unavailable: {Points} points are not written now; their frames stay in the journal and are written after the next start")]
    private partial void LogGaveUp(int points);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "InfluxDB writer stopped after writing {Points} points")]
    private partial void LogStopped(long points);
}
