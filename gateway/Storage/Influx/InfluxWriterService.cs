using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using Microsoft.Extensions.Options;

namespace CityGateway.Storage.Influx;

/// <summary>
/// Batches points by count and interval and writes them. The status code decides: 2xx done; 413
/// split the batch; 400/422 (a point InfluxDB refuses) split until the offending points are
/// isolated, quarantine them with the server's message, keep the rest; 401/403 stop and retry
/// slowly, loudly; 429/5xx/network errors back off with jitter (Retry-After respected) and retry
/// the same batch, so data waits in the queues and the broker rather than being dropped.
/// </summary>
public sealed partial class InfluxWriterService : BackgroundService
{
    private readonly ChannelReader<PipelineItem> _points;
    private readonly ChannelReader<Point> _self;
    private readonly IFrameLog _log;
    private readonly InfluxClient _client;
    private readonly InfluxOptions _options;
    private readonly QuarantineStore _quarantine;
    private readonly GatewayMetrics _metrics;
    private readonly GatewayHealth _health;
    private readonly ILogger<InfluxWriterService> _logger;
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private readonly LineArena _pipelineLines;
    /// <summary>Lines of the points that come unencoded (self-metrics, exchange, federation).</summary>
    private readonly LineArena _ownLines = new();
    private static readonly TimeSpan CollectSlice = TimeSpan.FromMilliseconds(20);

    public InfluxWriterService(PipelineChannels channels, IFrameLog log, InfluxClient client, IOptions<InfluxOptions> options,
        QuarantineStore quarantine, GatewayMetrics metrics, GatewayHealth health, ILogger<InfluxWriterService> logger)
    {
        _points = channels.Points.Reader;
        _pipelineLines = channels.Lines;
        _self = channels.SelfMetrics.Reader;
        _log = log;
        _client = client;
        _options = options.Value;
        _quarantine = quarantine;
        _metrics = metrics;
        _health = health;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Task.Run(() => PingLoopAsync(stoppingToken), CancellationToken.None);
        await EnsureDatabaseAsync(stoppingToken);
        var batch = new List<EncodedPoint>(_options.BatchSize);
        long batchSequence = -1;
        var interval = TimeSpan.FromMilliseconds(Math.Max(10, _options.FlushIntervalMs));
        // The loop ends when the pipeline completes the channel (shutdown), after writing what is left.
        while (true)
        {
            bool more;
            try
            {
                // Wake for data points, or every flush interval for the gateway's own metrics.
                using var tick = new CancellationTokenSource(interval);
                more = await _points.WaitToReadAsync(tick.Token);
            }
            catch (OperationCanceledException) { more = true; }
            catch (ChannelClosedException) { more = false; }
            if (!more) break;
            var deadline = Stopwatch.GetTimestamp() + (long)(interval.TotalSeconds * Stopwatch.Frequency);
            while (batch.Count < _options.BatchSize)
            {
                while (batch.Count < _options.BatchSize && _points.TryRead(out var item))
                {
                    if (item.Point is not null) batch.Add(_ownLines.Append(item.Point));
                    else if (item.Line.Chunk is not null) batch.Add(item.Line);
                    if (item.Sequence > batchSequence) batchSequence = item.Sequence;
                }
                if (batch.Count >= _options.BatchSize) break;
                var now = Stopwatch.GetTimestamp();
                if (deadline <= now || _points.Completion.IsCompleted) break;
                // Collect in slices rather than waking for every point: at low rates this saves a
                // thread wake-up per point; at high rates the batch fills within a slice anyway.
                var slice = TimeSpan.FromTicks(Math.Min(Stopwatch.GetElapsedTime(now, deadline).Ticks, CollectSlice.Ticks));
                await Task.Delay(slice, CancellationToken.None);
            }
            while (batch.Count < _options.BatchSize * 2 && _self.TryRead(out var own)) batch.Add(_ownLines.Append(own));
            bool stored = batch.Count == 0 || await WriteBatchAsync(batch, stoppingToken);
            // Only now may the journal forget these frames; a batch not stored stays for the next start.
            if (stored && batchSequence >= 0) _log.Commit(batchSequence);
            Release(batch);
            batch.Clear();
            batchSequence = -1;
        }
        LogStopped(_metrics.PointsWritten);
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
                    MarkInflux(true, "writes accepted");
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
                    MarkInflux(true, "reachable");
                    break;
                case WriteOutcome.Unauthorised:
                case WriteOutcome.Retry:
                    _metrics.WriteFailed();
                    if (result.Outcome == WriteOutcome.Unauthorised)
                    {
                        _health.InfluxUnauthorised = true;
                        LogUnauthorised(result.StatusCode, _client.WriteEndpoint, result.Message);
                    }
                    else
                    {
                        LogWriteRetry(result.StatusCode, result.Message, part.Count);
                    }
                    MarkInflux(false, result.StatusCode == 0 ? result.Message : $"HTTP {result.StatusCode}: {result.Message}");
                    if (stoppingToken.IsCancellationRequested)
                    {
                        LogGaveUp(part.Count + pending.Sum(s => s.Count));
                        return false;
                    }
                    var wait = result.RetryAfter is { } ra && ra > TimeSpan.Zero
                        ? TimeSpan.FromMilliseconds(Math.Min(ra.TotalMilliseconds, _options.RetryMaxMs))
                        : Jitter(delay);
                    try { await Task.Delay(wait, stoppingToken); }
                    catch (OperationCanceledException) { }
                    delay = TimeSpan.FromMilliseconds(Math.Min(_options.RetryMaxMs, delay.TotalMilliseconds * 2));
                    pending.Push(part);
                    break;
            }
        }
        return true;
    }

    private static TimeSpan Jitter(TimeSpan d) => TimeSpan.FromMilliseconds(d.TotalMilliseconds * (0.5 + Random.Shared.NextDouble() / 2));

    private volatile bool _writeFailing;

    private void MarkInflux(bool reachable, string detail)
    {
        _writeFailing = !reachable;
        if (reachable) _health.InfluxUnauthorised = false;
        if (_health.InfluxReachable != reachable) LogInfluxState(reachable ? "reachable" : "unreachable", detail);
        _health.InfluxReachable = reachable;
        _health.InfluxDetail = detail;
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
                if (_health.InfluxReachable || _health.InfluxDetail.StartsWith("not checked")) LogInfluxState("unreachable", detail);
                _health.InfluxReachable = false;
                _health.InfluxDetail = detail;
            }
            else if (!_writeFailing && !_health.InfluxReachable)
            {
                LogInfluxState("reachable", "ping " + detail);
                _health.InfluxReachable = true;
                _health.InfluxDetail = "ping " + detail;
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
