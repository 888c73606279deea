using System.Buffers;
using System.Text.Unicode;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Normalisation;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Pipeline;

/// <summary>
/// Takes frames from the sources, finds their route, decodes and normalises them, and queues the
/// points for the writer. One bad frame is quarantined and never stops the loop.
/// </summary>
public sealed partial class PipelineService : BackgroundService
{
    private readonly IFrameLog _log;
    private readonly WriterQueues _writer;
    private readonly RouteTable _routes;
    private readonly Normaliser _normaliser;
    private readonly QuarantineStore _quarantine;
    private readonly GatewayMetrics _metrics;
    private readonly PipelineOptions _options;
    private readonly long _maxAgeNs;
    private readonly ILogger<PipelineService> _logger;
    private readonly GatewayClock _clock;
    private readonly StringPool _names;
    private static readonly TimeSpan ReadCoalesce = TimeSpan.FromMilliseconds(2);

    public PipelineService(IFrameLog log, WriterQueues writer, RouteTable routes, Normaliser normaliser, QuarantineStore quarantine,
        GatewayMetrics metrics, IOptions<PipelineOptions> options, IOptions<JournalOptions> journal, GatewayClock clock, StringPool names, ILogger<PipelineService> logger)
    {
        _clock = clock;
        _names = names;
        _log = log;
        _writer = writer;
        _routes = routes;
        _normaliser = normaliser;
        _quarantine = quarantine;
        _metrics = metrics;
        _options = options.Value;
        _maxAgeNs = journal.Value.MaxAge.Ticks * 100;
        _logger = logger;
        metrics.QueueDepth = () => (int)Math.Min(int.MaxValue, log.Stats.Pending);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var readings = new List<Reading>(32);
        var points = new List<Point>(8);
        var rejections = new List<Rejection>(8);
        // The sources stop before this service (DataPath): at shutdown, close the log and finish
        // what is in it, so the writer can store it within the shutdown deadline.
        using var onStop = stoppingToken.Register(_log.Complete);
        try
        {
            while (true)
            {
                var read = _log.ReadAsync(CancellationToken.None);
                bool waited = !read.IsCompleted;
                if (await read is not { } logged) break;
                // Caught up with the sources: let frames gather for a moment instead of waking a
                // thread for every one of them. A wake-up costs more than handling a frame.
                if (waited) await Task.Delay(ReadCoalesce, CancellationToken.None);
                var (sequence, frame) = logged;
                Handle(frame, readings, points, rejections);
                // Every frame goes to the writer, with or without points: the journal commits in order.
                var queued = _writer.AddFrameAsync(sequence, points);
                _normaliser.Recycle(points);
                await queued;
            }
        }
        finally
        {
            _writer.Frames.Writer.TryComplete();
        }
    }

    /// <summary>
    /// One frame from the journal to points: checked for age, routed, decoded and normalised,
    /// replacing the contents of <paramref name="points"/>; what is refused is quarantined. The
    /// readings and rejections lists are scratch space reused between frames.
    /// </summary>
    internal void Handle(RawFrame frame, List<Reading> readings, List<Point> points, List<Rejection> rejections)
    {
        readings.Clear();
        points.Clear();
        try
        {
            if (frame.ReceivedAtNs < _clock.NowNs() - _maxAgeNs && !frame.IsReplay)
                _quarantine.Add(QuarantineReasons.JournalExpired,
                    $"received {UnixTime.FromNs(frame.ReceivedAtNs):O}, not stored within Gateway:Journal:MaxAge; replay it from the quarantine",
                    frame);
            else
                Process(frame, readings, points, rejections);
        }
        catch (Exception e)
        {
            LogProcessingError(e, frame.Topic);
            _quarantine.Add(QuarantineReasons.ProcessingError, e.GetType().Name + ": " + e.Message, frame);
            _normaliser.Recycle(points);
        }
    }

    internal void Process(RawFrame frame, List<Reading> readings, List<Point> points, List<Rejection> rejections)
    {
        if (frame.OriginalLength > _options.MaxPayloadBytes)
        {
            _quarantine.Add(QuarantineReasons.PayloadTooLarge,
                $"payload of {frame.OriginalLength} bytes exceeds Gateway:Pipeline:MaxPayloadBytes ({_options.MaxPayloadBytes}); its first {frame.Payload.Length} bytes are kept",
                frame);
            return;
        }
        if (!_routes.TryResolve(frame.SourceKind, frame.Topic, out var route, out var decoder))
        {
            _quarantine.Add(QuarantineReasons.NoRoute, $"no route matches '{Timestamps.Truncate(frame.Topic, 200)}'", frame);
            return;
        }
        if (!Utf8.IsValid(frame.Payload))
        {
            _quarantine.Add(QuarantineReasons.InvalidUtf8, "payload is not valid UTF-8", frame, route.ToString());
            return;
        }
        var context = new DecodeContext(route, frame.Topic, frame.ReceivedAtNs, _names);
        var error = decoder.Decode(frame.Payload, context, readings);
        if (error is not null)
        {
            _quarantine.Add(error.Reason, error.Detail, frame, route.ToString());
            return;
        }
        _metrics.FrameDecoded();
        // A frame with no readings at all (a heartbeat, an empty codec output) is counted, not quarantined.
        if (readings.Count == 0) _metrics.EmptyFrame();
        rejections.Clear();
        _normaliser.Normalise(frame, readings, points, rejections);
        foreach (var r in rejections) _quarantine.Add(r.Reason, r.Detail, frame, route.ToString(), r.Device, r.Field);
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "Unexpected error processing a frame from {Topic}; the frame is quarantined")]
    private partial void LogProcessingError(Exception e, string topic);
}
