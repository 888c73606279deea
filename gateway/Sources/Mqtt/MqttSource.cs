using CityGateway.Core;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Routing;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// Subscribes to every route's topic filter and hands each message to the pipeline. Subscriptions
/// are renewed after every (re)connect, whether or not the broker kept the session, so a broker
/// restart without persistence never leaves a connected but deaf consumer. With
/// Gateway:Mqtt:SharedGroup set, each filter is subscribed as <c>$share/{group}/{filter}</c> so that
/// several instances split the messages; routing still matches the message's real topic. The broker's
/// answer to each subscription is checked: a refused one is logged and makes /readyz fail.
/// </summary>
public sealed partial class MqttSource : BackgroundService, IFrameSource
{
    private readonly MqttConnectionOptions _options;
    private readonly (string Filter, int Qos)[] _subscriptions;
    private readonly IFrameLog _log;
    private readonly int _keepBytes;
    private readonly GatewayMetrics _metrics;
    private readonly GatewayHealth _health;
    private readonly ILogger<MqttSource> _logger;
    private readonly GatewayClock _clock;
    private readonly StringPool _names;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _protocolFallback = new(0, 1);
    private readonly SemaphoreSlim _journalFull = new(0, 1);
    private volatile bool _paused;
    private MosquittoClient? _client;
    private long _droppedAtShutdown;
    private volatile string? _refusal;

    public MqttSource(IOptions<MqttConnectionOptions> options, RouteTable routes, IFrameLog log,
        IOptions<PipelineOptions> pipeline, IOptions<Quarantine.QuarantineOptions> quarantine,
        GatewayMetrics metrics, GatewayHealth health, GatewayClock clock, StringPool names, ILogger<MqttSource> logger)
    {
        _clock = clock;
        _names = names;
        _options = options.Value;
        _subscriptions = Subscriptions(routes.Routes, _options.SharedGroup);
        _log = log;
        _keepBytes = Math.Max(pipeline.Value.MaxPayloadBytes, 0);
        _quarantineKeep = Math.Max(quarantine.Value.MaxPayloadBytes, 0);
        _metrics = metrics;
        _health = health;
        _logger = logger;
    }

    private readonly int _quarantineKeep;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> _pendingSubacks = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> _unsubacked = new();
    private long _lastMessageAt;
    private readonly object _subscriptionsLock = new();

    /// <summary>What to subscribe to: each MQTT route's filter once (at the highest QoS asked for it),
    /// in its shared form when a group is set.</summary>
    internal static (string Filter, int Qos)[] Subscriptions(IEnumerable<TopicRoute> routes, string? sharedGroup) =>
        routes.Where(r => r.Source == "mqtt")
            .GroupBy(r => string.IsNullOrEmpty(sharedGroup) ? r.Filter : Topics.Shared(sharedGroup, r.Filter))
            .Select(g => (g.Key, g.Max(r => r.Qos)))
            .ToArray();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield(); // the first connect blocks; keep it off the host's start-up path
        using var client = new MosquittoClient(_options, _names);
        _client = client;
        client.Connected = OnConnected;
        client.Disconnected = OnDisconnected;
        client.MessageReceived = OnMessage;
        client.Subscribed = OnSubscribed;
        client.Unsubscribed = mid => _unsubacked[mid] = 0;
        LogStarting(client.Endpoint, _options.ClientId, MosquittoClient.LibraryVersion, _options.CleanSession ? "clean" : "persistent");
        if (!string.IsNullOrEmpty(_options.SharedGroup)) LogSharedGroup(_options.SharedGroup, _options.ClientId);
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
            if (_options.LeaveGroupOnShutdown && !string.IsNullOrEmpty(_options.SharedGroup)) await LeaveGroupAsync(client);
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

    /// <summary>
    /// Leaves the shared group before disconnecting: unsubscribes, waits for the broker's answer, then
    /// takes in what the broker had already handed to this instance until nothing has come for a
    /// moment. Afterwards the persistent session holds no subscription, so the broker no longer
    /// queues a share for it. Bounded, so shutdown still ends within its timeout.
    /// </summary>
    private async Task LeaveGroupAsync(MosquittoClient client)
    {
        var group = _options.SharedGroup;
        if (!client.IsConnected)
        {
            LogCannotLeave(group);
            return;
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long before = _metrics.Received;
        // Called from this thread, not the network thread: an UNSUBACK may come back before the
        // message id is known here, so answers are collected and compared afterwards.
        var sent = new List<int>();
        foreach (var (filter, _) in _subscriptions)
        {
            int rc = client.Unsubscribe(filter, out int mid);
            if (rc == 0) sent.Add(mid);
            else LogUnsubscribeFailed(filter, MosquittoClient.DescribeError(rc));
        }
        var answerBy = TimeSpan.FromSeconds(5);
        bool Answered() => sent.All(_unsubacked.ContainsKey);
        while (!Answered() && sw.Elapsed < answerBy && client.IsConnected) await Task.Delay(20);
        bool answered = Answered();
        // Messages already on their way still arrive after the UNSUBACK; none are assigned to us after it.
        var quiet = TimeSpan.FromMilliseconds(500);
        var drainBy = sw.Elapsed + TimeSpan.FromSeconds(10);
        Interlocked.Exchange(ref _lastMessageAt, Math.Max(Interlocked.Read(ref _lastMessageAt), Environment.TickCount64));
        while (answered && sw.Elapsed < drainBy && client.IsConnected
               && Environment.TickCount64 - Interlocked.Read(ref _lastMessageAt) < quiet.TotalMilliseconds)
            await Task.Delay(50);
        if (answered) LogLeftGroup(group, _metrics.Received - before, sw.Elapsed.TotalSeconds);
        else LogCannotLeave(group);
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
        if (client.ProtocolVersion != 5 && !string.IsNullOrEmpty(_options.SharedGroup)) LogSharedOn311(client.Endpoint);
        _pendingSubacks.Clear();
        lock (_subscriptionsLock)
            _health.Subscriptions = _subscriptions.Select(s => new SubscriptionStatus(s.Filter, s.Qos, "pending")).ToArray();
        for (int i = 0; i < _subscriptions.Length; i++)
        {
            var (filter, qos) = _subscriptions[i];
            // The SUBACK is handled on this same network thread after this callback returns, so the
            // message id is recorded before its answer can arrive.
            int src = client.Subscribe(filter, qos, out int mid);
            if (src == 0) _pendingSubacks[mid] = i;
            else
            {
                LogSubscribeFailed(filter, MosquittoClient.DescribeError(src));
                SetSubscription(i, s => s with { State = "refused", Reason = MosquittoClient.DescribeError(src) });
            }
        }
        _health.BrokerConnected = true;
        _health.BrokerDetail = $"connected to {client.Endpoint} (MQTT {(client.ProtocolVersion == 5 ? "5" : "3.1.1")})";
    }

    /// <summary>The broker's answer to one SUBSCRIBE: the granted QoS, or a reason code of 128 or more.</summary>
    private void OnSubscribed(int mid, int code)
    {
        if (!_pendingSubacks.TryRemove(mid, out int i) || i >= _subscriptions.Length) return;
        var (filter, qos) = _subscriptions[i];
        if (code >= 128)
        {
            // E.g. 0x87 not authorised, 0x9E shared subscriptions not supported: the gateway would be
            // connected but deaf to these topics, so this is an error and /readyz says so.
            var reason = MosquittoClient.DescribeConnack(code);
            LogSubscribeRefused(filter, code, reason);
            SetSubscription(i, s => s with { State = "refused", Reason = $"{reason} (code {code})" });
            return;
        }
        if (code < qos) LogSubscribeDowngraded(filter, qos, code);
        else LogSubscribed(filter, code);
        SetSubscription(i, s => s with { State = "granted", GrantedQos = code });
    }

    private void SetSubscription(int index, Func<SubscriptionStatus, SubscriptionStatus> change)
    {
        lock (_subscriptionsLock)
        {
            var copy = _health.Subscriptions.ToArray();
            if (index >= copy.Length) return;
            copy[index] = change(copy[index]);
            _health.Subscriptions = copy;
        }
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
        if (rc == SessionTakenOver)
        {
            // Another client connected with our client id. Two gateway instances with one id take the
            // session from each other at every reconnect; each needs an id of its own.
            _health.BrokerDetail = $"session taken over at {endpoint}: another client connected with client id '{_options.ClientId}'; reconnecting";
            LogSessionTakenOver(endpoint, _options.ClientId);
            return;
        }
        LogDisconnected(endpoint, rc, reason);
    }

    /// <summary>
    /// Runs on libmosquitto's network thread. For QoS 1 the library has already queued the PUBACK,
    /// so the message is ours now: it goes into the journal here, synchronously, before this callback
    /// returns. The same thread writes the PUBACK to the socket only after the callback returns, so a
    /// process killed before the append gets the message again from its session; one killed between
    /// the append and that write may journal it twice.
    /// </summary>
    private void OnMessage(in MqttIncoming message)
    {
        int length = message.Payload.Length;
        // An oversized payload is kept only as far as the quarantine will store it.
        var bytes = (length > _keepBytes ? message.Payload[..Math.Min(length, _quarantineKeep)] : message.Payload).ToArray();
        var frame = new RawFrame("mqtt", message.Topic, bytes, _clock.ReceiveNs(), message.Qos, length);
        _metrics.FrameReceived(length);
        Interlocked.Exchange(ref _lastMessageAt, Environment.TickCount64);
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

    /// <summary>MQTT 5 DISCONNECT reason 0x8E.</summary>
    private const int SessionTakenOver = 142;

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

    [LoggerMessage(EventId = 1015, Level = LogLevel.Error, Message = "The broker refused the subscription to {Filter} (code {Code}: {Reason}); nothing is received on it")]
    private partial void LogSubscribeRefused(string filter, int code, string reason);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Warning, Message = "The broker granted {Filter} at QoS {Granted} only, not {Qos}: messages sent while the gateway is away are not kept for it")]
    private partial void LogSubscribeDowngraded(string filter, int qos, int granted);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Information, Message = "Shared subscriptions in group {Group}: this instance ({ClientId}) takes a share of each route's messages")]
    private partial void LogSharedGroup(string group, string clientId);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Warning, Message = "Shared subscriptions over MQTT 3.1.1 with {Endpoint}: $share is an MQTT 5 feature that mosquitto, EMQX, HiveMQ and VerneMQ also accept on 3.1.1; a broker that does not either refuses the subscription (event 1015) or takes it as an ordinary filter that matches nothing")]
    private partial void LogSharedOn311(string endpoint);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Error, Message = "Session taken over at {Endpoint}: another client connected with client id {ClientId}. Every gateway instance needs its own Gateway:Mqtt:ClientId")]
    private partial void LogSessionTakenOver(string endpoint, string clientId);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Information, Message = "Left shared group {Group}: unsubscribed, then took in {Count} messages already on their way ({Seconds:F1} s); the broker hands this instance no more")]
    private partial void LogLeftGroup(string group, long count, double seconds);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Warning, Message = "Could not leave shared group {Group} (not connected, or no answer to the unsubscribe): the broker keeps queueing a share for this client id until its session expires")]
    private partial void LogCannotLeave(string group);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning, Message = "Unsubscribing from {Filter} failed: {Error}")]
    private partial void LogUnsubscribeFailed(string filter, string error);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "{Count} messages could not be put in the journal (shutdown or disk failure)")]
    private partial void LogDroppedAtShutdown(long count);
}
