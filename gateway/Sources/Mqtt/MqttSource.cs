using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Routing;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// Subscribes to every route's topic filter and hands each message to the pipeline. Subscriptions
/// are renewed after every (re)connect, whether or not the broker kept the session, so a broker
/// restart without persistence never leaves a connected but deaf consumer.
/// </summary>
public sealed partial class MqttSource : BackgroundService
{
    private readonly MqttConnectionOptions _options;
    private readonly (string Filter, int Qos)[] _subscriptions;
    private readonly IFrameLog _log;
    private readonly int _keepBytes;
    private readonly GatewayMetrics _metrics;
    private readonly GatewayHealth _health;
    private readonly ILogger<MqttSource> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _protocolFallback = new(0, 1);
    private readonly SemaphoreSlim _journalFull = new(0, 1);
    private volatile bool _paused;
    private MosquittoClient? _client;
    private long _droppedAtShutdown;
    private volatile string? _refusal;

    public MqttSource(IOptions<MqttConnectionOptions> options, RouteTable routes, IFrameLog log,
        IOptions<PipelineOptions> pipeline, IOptions<Quarantine.QuarantineOptions> quarantine,
        GatewayMetrics metrics, GatewayHealth health, ILogger<MqttSource> logger)
    {
        _options = options.Value;
        _subscriptions = routes.Routes.GroupBy(r => r.Filter).Select(g => (g.Key, g.Max(r => r.Qos))).ToArray();
        _log = log;
        _keepBytes = Math.Max(pipeline.Value.MaxPayloadBytes, 0);
        _quarantineKeep = Math.Max(quarantine.Value.MaxPayloadBytes, 0);
        _metrics = metrics;
        _health = health;
        _logger = logger;
    }

    private readonly int _quarantineKeep;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield(); // the first connect blocks; keep it off the host's start-up path
        using var client = new MosquittoClient(_options);
        _client = client;
        client.Connected = OnConnected;
        client.Disconnected = OnDisconnected;
        client.MessageReceived = OnMessage;
        LogStarting(client.Endpoint, _options.ClientId, MosquittoClient.LibraryVersion, _options.CleanSession ? "clean" : "persistent");
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await ConnectAsync(client, stoppingToken);
                // Wait for shutdown, a full journal, or a broker that refuses MQTT 5.
                var fallback = _protocolFallback.WaitAsync(stoppingToken);
                var full = _journalFull.WaitAsync(stoppingToken);
                var which = await Task.WhenAny(fallback, full);
                await which; // throws when stopping
                if (which == full)
                {
                    // Stop reading: the broker keeps what follows in our persistent session.
                    client.Stop();
                    var stats = _log.Stats;
                    _health.BrokerDetail = $"paused: the journal is at its size bound ({stats.Bytes} of {stats.MaxBytes} bytes)";
                    LogPaused(stats.Bytes, stats.MaxBytes);
                    await _log.WaitForRoomAsync(stoppingToken);
                    _paused = false;
                    LogResumed(_log.Stats.Bytes);
                }
                else
                {
                    LogProtocolFallback(client.Endpoint);
                    client.Stop();
                    client.UseProtocol311();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
        finally
        {
            // Stop intake first: no callback runs after Stop returns; then let the pipeline drain.
            _stopping.Cancel();
            client.Stop();
            _health.BrokerConnected = false;
            _health.BrokerDetail = "stopped";
            _client = null;
            if (_droppedAtShutdown > 0) LogDroppedAtShutdown(_droppedAtShutdown);
            LogStopped(client.Endpoint);
        }
    }

    private async Task ConnectAsync(MosquittoClient client, CancellationToken ct)
    {
        var delay = TimeSpan.FromSeconds(Math.Max(1, _options.ReconnectMinSeconds));
        var max = TimeSpan.FromSeconds(Math.Max(_options.ReconnectMinSeconds, _options.ReconnectMaxSeconds));
        while (true)
        {
            var error = client.TryConnect();
            if (error is null) return;
            _health.BrokerDetail = $"cannot connect to {client.Endpoint}: {error}";
            LogConnectFailed(client.Endpoint, error, delay.TotalSeconds);
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromTicks(Math.Min(max.Ticks, delay.Ticks * 2));
        }
    }

    private void OnConnected(int rc, bool sessionPresent)
    {
        var client = _client;
        if (client is null) return;
        if (rc != 0)
        {
            var reason = MosquittoClient.DescribeConnack(rc);
            _health.BrokerConnected = false;
            _refusal = $"connection refused by {client.Endpoint}: {reason}";
            _health.BrokerDetail = _refusal;
            LogRefused(client.Endpoint, rc, reason);
            // 132 (MQTT 5) or 1 (3.1.1): the broker does not speak the protocol version we asked for.
            if (client.ProtocolVersion == 5 && rc is 132 or 1 && _protocolFallback.CurrentCount == 0) _protocolFallback.Release();
            return;
        }
        _refusal = null;
        LogConnected(client.Endpoint, client.ProtocolVersion == 5 ? "5" : "3.1.1", sessionPresent);
        foreach (var (filter, qos) in _subscriptions)
        {
            int src = client.Subscribe(filter, qos);
            if (src == 0) LogSubscribed(filter, qos);
            else LogSubscribeFailed(filter, MosquittoClient.DescribeError(src));
        }
        _health.BrokerConnected = true;
        _health.BrokerDetail = $"connected to {client.Endpoint} (MQTT {(client.ProtocolVersion == 5 ? "5" : "3.1.1")})";
    }

    private void OnDisconnected(int rc)
    {
        _health.BrokerConnected = false;
        if (rc == 0 || _stopping.IsCancellationRequested)
        {
            _health.BrokerDetail = "disconnected";
            return;
        }
        if (_refusal is { } refusal)
        {
            // The broker refused us (credentials, protocol): that, not the socket closing, is the news.
            _health.BrokerDetail = refusal + "; retrying";
            return;
        }
        var endpoint = _client?.Endpoint ?? "";
        var reason = rc < 128 ? MosquittoClient.DescribeError(rc) : MosquittoClient.DescribeConnack(rc);
        _health.BrokerDetail = $"connection to {endpoint} lost: {reason}; reconnecting";
        LogDisconnected(endpoint, rc, reason);
    }

    /// <summary>
    /// Runs on libmosquitto's network thread. For QoS 1 and 2 the library has already acknowledged
    /// the message, so it is ours now: it goes into the journal here, synchronously, before this
    /// callback returns.
    /// </summary>
    private void OnMessage(in MqttIncoming message)
    {
        int length = message.Payload.Length;
        // An oversized payload is kept only as far as the quarantine will store it.
        var bytes = (length > _keepBytes ? message.Payload[..Math.Min(length, _quarantineKeep)] : message.Payload).ToArray();
        var frame = new RawFrame("mqtt", message.Topic, bytes, UnixTime.ReceiveNs(), message.Qos, length);
        _metrics.FrameReceived(length);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                _log.Append(frame);
                if (attempt > 0) LogJournalWriteRecovered(attempt);
                break;
            }
            catch (Exception e) when (e is InvalidOperationException or System.Threading.Channels.ChannelClosedException)
            {
                // Only while shutting down, after the log was closed.
                Interlocked.Increment(ref _droppedAtShutdown);
                return;
            }
            catch (IOException e)
            {
                // The disk refused the write (full, read-only). Hold this thread and retry: the
                // broker stops sending meanwhile and keeps the rest in our persistent session.
                if (attempt == 0) LogJournalWriteFailed(e.Message);
                if (_stopping.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(1)))
                {
                    Interlocked.Increment(ref _droppedAtShutdown);
                    return;
                }
            }
        }
        if (_log.IsFull) PauseIntake();
    }

    private void PauseIntake()
    {
        if (_paused) return;
        _paused = true;
        if (_journalFull.CurrentCount == 0) _journalFull.Release();
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "MQTT source starting: broker {Endpoint}, client id {ClientId}, libmosquitto {Version}, {Session} session")]
    private partial void LogStarting(string endpoint, string clientId, string version, string session);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Connected to {Endpoint} with MQTT {Protocol} (session present: {SessionPresent})")]
    private partial void LogConnected(string endpoint, string protocol, bool sessionPresent);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Subscribed to {Filter} at QoS {Qos}")]
    private partial void LogSubscribed(string filter, int qos);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Subscribing to {Filter} failed: {Error}")]
    private partial void LogSubscribeFailed(string filter, string error);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Lost the connection to {Endpoint} (code {Code}: {Reason}); reconnecting with backoff")]
    private partial void LogDisconnected(string endpoint, int code, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Cannot connect to {Endpoint}: {Error}; retrying in {Seconds} s")]
    private partial void LogConnectFailed(string endpoint, string error, double seconds);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Error, Message = "Broker {Endpoint} refused the connection (code {Code}: {Reason})")]
    private partial void LogRefused(string endpoint, int code, string reason);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Broker {Endpoint} does not accept MQTT 5; falling back to MQTT 3.1.1")]
    private partial void LogProtocolFallback(string endpoint);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Information, Message = "MQTT source stopped ({Endpoint})")]
    private partial void LogStopped(string endpoint);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Journal at its size bound ({Bytes} of {MaxBytes} bytes): stopped reading from the broker until InfluxDB catches up")]
    private partial void LogPaused(long bytes, long maxBytes);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Journal has room again ({Bytes} bytes): reading from the broker")]
    private partial void LogResumed(long bytes);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Critical, Message = "Cannot append to the journal: {Error}. Holding the message and retrying every second; the broker keeps the rest")]
    private partial void LogJournalWriteFailed(string error);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Information, Message = "Journal append succeeded again after {Attempts} retries")]
    private partial void LogJournalWriteRecovered(int attempts);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "{Count} messages could not be put in the journal (shutdown or disk failure)")]
    private partial void LogDroppedAtShutdown(long count);
}
