using CityGateway.Core;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Routing;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// Subscribes to every route's topic filter and hands each message to the journal through the
/// shared <see cref="FrameIntake"/>. It owns the connection's life through <see cref="IMqttConnection"/>:
/// connects with capped backoff, reconnects after a loss, pauses at the journal bound. Subscriptions
/// are renewed after every (re)connect, whether or not the broker kept the session, so a broker
/// restart without persistence never leaves a connected but deaf consumer. With
/// Gateway:Mqtt:SharedGroup set, each filter is subscribed as <c>$share/{group}/{filter}</c> so that
/// several instances split the messages; routing still matches the message's real topic. The broker's
/// answer to each subscription is checked: a refused one is logged and makes /readyz fail.
/// A QoS 1/2 message is acknowledged only once the journal record holding it is durable: each stored
/// message's (sequence, acknowledgement) waits in <see cref="PendingAcks"/>, and one loop waits for the
/// journal to sync the newest and then acknowledges, in order, every message up to what is durable.
/// What the broker delivers again because its acknowledgement had not left (a lost connection, a
/// restart) is recognised by <see cref="Redeliveries"/> and acknowledged without a second copy.
/// </summary>
public sealed partial class MqttSource : BackgroundService, IFrameSource, IFrameIntakeEvents
{
    private readonly MqttConnectionOptions _options;
    private readonly (string Filter, int Qos)[] _subscriptions;
    private readonly MqttSubscription[] _subscribe;
    private readonly IMqttConnection _client;
    private readonly FrameIntake _intake;
    private readonly int _keepBytes;
    private readonly int _quarantineKeep;
    private readonly GatewayMetrics _metrics;
    private readonly BrokerState _broker;
    private readonly TimeProvider _time;
    private readonly ILogger<MqttSource> _logger;
    private readonly GatewayClock _clock;
    private readonly CancellationTokenSource _stopping = new();
    private readonly IFrameLog _log;
    private readonly PendingAcks _pending;
    private readonly Redeliveries _redeliveries = new();
    // The client's thread only: the sequence of the last frame it appended.
    private long _lastSequence = -1;
    // QoS 1/2 messages left unacknowledged at the broker because the journal was at its bound, and
    // messages the broker delivered again that the journal already had; the latter as last logged.
    private long _heldAtBound;
    private long _redelivered;
    private long _redeliveredReported;
    private readonly CancellationTokenSource _ackStop = new();
    private MqttProtocol _protocol;
    private TaskCompletionSource<MqttDisconnect> _lost = NewLost();
    // Which connection the subscription answers belong to: those of an earlier one are ignored.
    private int _connection;
    private long _lastMessageAt;
    // The client's callback faults already logged, and when the message path last looked.
    private long _faultsReported;
    private long _faultsCheckedAt;

    public MqttSource(IOptions<MqttConnectionOptions> options, RouteTable routes, IFrameLog log, IMqttConnection client,
        IOptions<PipelineOptions> pipeline, IOptions<Quarantine.QuarantineOptions> quarantine,
        GatewayMetrics metrics, BrokerState broker, GatewayClock clock, ILogger<MqttSource> logger, TimeProvider? time = null)
    {
        _clock = clock;
        _options = options.Value;
        _subscriptions = Subscriptions(routes.Routes, _options.SharedGroup);
        _subscribe = _subscriptions.Select(s => new MqttSubscription(s.Filter, s.Qos)).ToArray();
        _client = client;
        _log = log;
        _intake = new FrameIntake(Source, log, metrics, clock, this);
        _keepBytes = Math.Max(pipeline.Value.MaxPayloadBytes, 0);
        _quarantineKeep = Math.Max(quarantine.Value.MaxPayloadBytes, 0);
        _metrics = metrics;
        _broker = broker;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _protocol = _options.ProtocolVersion == 4 ? MqttProtocol.V311 : MqttProtocol.V5;
        _pending = new PendingAcks(_options.MaxInflight > 0 ? Math.Min(_options.MaxInflight, 65535) : 65535);
    }

    private const string Source = "mqtt";

    /// <summary>What to subscribe to: each MQTT route's filter once (at the highest QoS asked for it),
    /// in its shared form when a group is set.</summary>
    internal static (string Filter, int Qos)[] Subscriptions(IEnumerable<TopicRoute> routes, string? sharedGroup) =>
        routes.Where(r => r.Source == "mqtt")
            .GroupBy(r => string.IsNullOrEmpty(sharedGroup) ? r.Filter : Topics.Shared(sharedGroup, r.Filter))
            .Select(g => (g.Key, g.Max(r => r.Qos)))
            .ToArray();

    private static TaskCompletionSource<MqttDisconnect> NewLost() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Stored messages waiting for the journal's sync before their acknowledgement.</summary>
    internal int PendingAcknowledgements => _pending.Count;

    /// <summary>Messages the broker delivered again that were already in the journal (acknowledged, not stored twice).</summary>
    internal long Redelivered => Interlocked.Read(ref _redelivered);

    private TimeSpan MinDelay => TimeSpan.FromSeconds(Math.Max(1, _options.ReconnectMinSeconds));

    private TimeSpan MaxDelay => TimeSpan.FromSeconds(Math.Max(_options.ReconnectMinSeconds, _options.ReconnectMaxSeconds));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield(); // the first connect blocks; keep it off the host's start-up path
        _client.MessageReceived = OnMessage;
        _client.ConnectionLost = OnConnectionLost;
        var acknowledging = AcknowledgeDurableAsync(_pending, _ackStop.Token);
        try
        {
            _broker.Implementation = _client.Implementation;
            LogStarting(_client.Endpoint, _options.ClientId, _client.Implementation, _options.CleanSession ? "clean" : "persistent");
            if (!_options.CleanSession)
            {
                // The newest messages of the previous run: their acknowledgements may not have left.
                var recovered = _log.RecoveredDeliveries(Source, _pending.Capacity);
                _redeliveries.Seed(recovered);
                if (recovered.Count > 0) LogRecoveredDeliveries(recovered.Count);
            }
            if (!string.IsNullOrEmpty(_options.SharedGroup)) LogSharedGroup(_options.SharedGroup, _options.ClientId);
            bool afterLoss = false;
            Task? full = null;
            while (!stoppingToken.IsCancellationRequested)
            {
                var lost = await ConnectAsync(afterLoss, stoppingToken);
                // One wait for the bound at a time, kept across connections, so that no signal goes to a stale waiter.
                full ??= _intake.BoundReachedAsync(stoppingToken);
                var which = await Task.WhenAny(lost, full);
                ReportCallbackFaults();
                if (which == full)
                {
                    full = null;
                    await which; // throws when stopping
                    // What is already in the journal is acknowledged first, so the broker does not send it again.
                    await DrainAcknowledgementsAsync(stoppingToken);
                    // Stop reading: the broker keeps what follows in our persistent session.
                    await _client.DisconnectAsync(stoppingToken);
                    var stats = _intake.Stats;
                    _broker.Disconnected($"paused: the journal is at its size bound ({stats.Bytes} of {stats.MaxBytes} bytes)");
                    LogPaused(stats.Bytes, stats.MaxBytes);
                    await _intake.WaitForRoomAsync(stoppingToken);
                    LogResumed(_intake.Stats.Bytes, Interlocked.Exchange(ref _heldAtBound, 0));
                    afterLoss = false;
                }
                else
                {
                    // Logged by OnConnectionLost. Make sure the client's own loop has ended, then reconnect with backoff.
                    await _client.DisconnectAsync(stoppingToken);
                    _broker.Disconnected();
                    afterLoss = true;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
        finally
        {
            if (_options.LeaveGroupOnShutdown && !string.IsNullOrEmpty(_options.SharedGroup)) await LeaveGroupAsync();
            await DrainAcknowledgementsAsync(CancellationToken.None);
            // Stop intake first: no callback runs after the disconnect returns; then let the pipeline drain.
            _stopping.Cancel();
            await _client.DisconnectAsync(CancellationToken.None);
            _ackStop.Cancel();
            await acknowledging;
            _broker.Disconnected("stopped");
            ReportCallbackFaults();
            ReportRedelivered();
            if (_intake.Dropped > 0) LogDroppedAtShutdown(_intake.Dropped);
            LogStopped(_client.Endpoint);
        }
    }

    /// <summary>
    /// Connects, retrying with capped exponential backoff (ReconnectMinSeconds doubling to
    /// ReconnectMaxSeconds) while the broker is unreachable or refuses; after a lost connection the
    /// first attempt waits too, so two instances that take one session from each other do not spin.
    /// A broker that refuses MQTT 5 is asked again at once with 3.1.1. Returns the task that completes
    /// when this connection is lost.
    /// </summary>
    private async Task<Task<MqttDisconnect>> ConnectAsync(bool afterLoss, CancellationToken ct)
    {
        var delay = MinDelay;
        if (afterLoss)
        {
            await Task.Delay(delay, _time, ct);
            delay = Next(delay);
        }
        while (true)
        {
            // Armed before connecting: a loss can be reported before ConnectAsync has returned.
            var lost = NewLost();
            Volatile.Write(ref _lost, lost);
            var result = await _client.ConnectAsync(_protocol, ct);
            ReportCallbackFaults();
            if (result.Outcome == MqttConnectOutcome.Accepted)
            {
                OnConnected(result.SessionPresent, ct);
                return lost.Task;
            }
            if (result.Outcome == MqttConnectOutcome.Refused)
            {
                // The broker refused us (credentials, protocol): that, not the socket closing, is the news.
                _broker.Disconnected($"connection refused by {_client.Endpoint}: {result.Reason}; retrying");
                LogRefused(_client.Endpoint, result.Code, result.Reason);
                // 132 (MQTT 5) or 1 (3.1.1): the broker does not speak the protocol version we asked for.
                if (_protocol == MqttProtocol.V5 && result.Code is 132 or 1)
                {
                    LogProtocolFallback(_client.Endpoint);
                    _protocol = MqttProtocol.V311;
                    continue;
                }
            }
            else
            {
                _broker.Disconnected($"cannot connect to {_client.Endpoint}: {result.Reason}");
                LogConnectFailed(_client.Endpoint, result.Reason, delay.TotalSeconds);
            }
            await Task.Delay(delay, _time, ct);
            delay = Next(delay);
        }
    }

    private TimeSpan Next(TimeSpan delay) => TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, delay.Ticks * 2));

    /// <summary>Every filter is subscribed again on every connection, whether or not the broker kept the
    /// session: a broker restarted without persistence would otherwise leave us connected but deaf.</summary>
    private void OnConnected(bool sessionPresent, CancellationToken ct)
    {
        var protocol = _protocol == MqttProtocol.V5 ? "5" : "3.1.1";
        LogConnected(_client.Endpoint, protocol, sessionPresent);
        if (_protocol != MqttProtocol.V5 && !string.IsNullOrEmpty(_options.SharedGroup)) LogSharedOn311(_client.Endpoint);
        // Without our session the broker delivers nothing again.
        if (!sessionPresent) _redeliveries.Clear();
        int connection = Interlocked.Increment(ref _connection);
        _broker.Connected($"connected to {_client.Endpoint} (MQTT {protocol})", _subscriptions);
        // Not awaited: the loop must see a full journal or a loss while the broker answers.
        _ = SubscribeAsync(connection, ct);
    }

    private async Task SubscribeAsync(int connection, CancellationToken ct)
    {
        MqttSubscribeResult[] results;
        try
        {
            results = await _client.SubscribeAsync(_subscribe, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            results = _subscribe.Select(s => MqttSubscribeResult.Refuse(s.Filter, -1, e.Message)).ToArray();
        }
        // Answers of a connection that has since ended say nothing about the current one.
        if (connection != Volatile.Read(ref _connection) || !_client.IsConnected) return;
        for (int i = 0; i < results.Length && i < _subscriptions.Length; i++)
        {
            var (filter, qos) = _subscriptions[i];
            var r = results[i];
            if (r.Granted)
            {
                if (r.GrantedQos < qos) LogSubscribeDowngraded(filter, qos, r.GrantedQos);
                else LogSubscribed(filter, r.GrantedQos);
                _broker.SubscriptionAnswered(i, s => s with { State = "granted", GrantedQos = r.GrantedQos });
            }
            else if (r.Code >= 128)
            {
                // E.g. 0x87 not authorised, 0x9E shared subscriptions not supported: the gateway would be
                // connected but deaf to these topics, so this is an error and /readyz says so.
                LogSubscribeRefused(filter, r.Code, r.Reason);
                _broker.SubscriptionAnswered(i, s => s with { State = "refused", Reason = $"{r.Reason} (code {r.Code})" });
            }
            else
            {
                LogSubscribeFailed(filter, r.Reason);
                _broker.SubscriptionAnswered(i, s => s with { State = "refused", Reason = r.Reason });
            }
        }
    }

    /// <summary>Runs on the client's thread when an accepted connection ends without our asking.</summary>
    private void OnConnectionLost(MqttDisconnect lost)
    {
        if (_stopping.IsCancellationRequested)
        {
            _broker.Disconnected("disconnected");
        }
        else if (lost.SessionTakenOver)
        {
            // Another client connected with our client id. Two gateway instances with one id take the
            // session from each other at every reconnect; each needs an id of its own.
            _broker.Disconnected($"session taken over at {_client.Endpoint}: another client connected with client id '{_options.ClientId}'; reconnecting");
            LogSessionTakenOver(_client.Endpoint, _options.ClientId);
        }
        else
        {
            _broker.Disconnected($"connection to {_client.Endpoint} lost: {lost.Reason}; reconnecting");
            LogDisconnected(_client.Endpoint, lost.Code, lost.Reason);
        }
        Volatile.Read(ref _lost).TrySetResult(lost);
    }

    /// <summary>
    /// Leaves the shared group before disconnecting: unsubscribes, waits for the broker's answer, then
    /// takes in what the broker had already handed to this instance until nothing has come for a
    /// moment. Afterwards the persistent session holds no subscription, so the broker no longer
    /// queues a share for it. Bounded, so shutdown still ends within its timeout.
    /// </summary>
    private async Task LeaveGroupAsync()
    {
        var group = _options.SharedGroup;
        if (!_client.IsConnected)
        {
            LogCannotLeave(group);
            return;
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long before = _metrics.Received;
        bool answered;
        using (var answerBy = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                var results = await _client.UnsubscribeAsync(_subscriptions.Select(s => s.Filter).ToArray(), answerBy.Token);
                foreach (var r in results)
                    if (r.Error is not null) LogUnsubscribeFailed(r.Filter, r.Error);
                // Filters that could not be sent have no answer to wait for.
                answered = results.All(r => r.Answered || r.Error is not null);
            }
            catch (OperationCanceledException) when (answerBy.IsCancellationRequested)
            {
                answered = false;
            }
        }
        // Messages already on their way still arrive after the UNSUBACK; none are assigned to us after it.
        var quiet = TimeSpan.FromMilliseconds(500);
        var drainBy = sw.Elapsed + TimeSpan.FromSeconds(10);
        Interlocked.Exchange(ref _lastMessageAt, Math.Max(Interlocked.Read(ref _lastMessageAt), Environment.TickCount64));
        while (answered && sw.Elapsed < drainBy && _client.IsConnected
               && Environment.TickCount64 - Interlocked.Read(ref _lastMessageAt) < quiet.TotalMilliseconds)
            await Task.Delay(50);
        if (answered) LogLeftGroup(group, _metrics.Received - before, sw.Elapsed.TotalSeconds);
        else LogCannotLeave(group);
    }

    /// <summary>
    /// Runs on the client's thread. The message goes into the journal here, synchronously; a QoS 1/2
    /// message's acknowledgement then waits in <see cref="PendingAcks"/> until the journal has synced
    /// it, so a process killed before that gets the message again. A message the broker delivers again
    /// that the journal already holds is only acknowledged. While the journal is at its bound (with a
    /// persistent session) a QoS 1/2 message is left unacknowledged instead of appended: the broker
    /// delivers it again after the pause, so the bound holds within what is already on its way.
    /// </summary>
    private void OnMessage(in MqttIncoming message)
    {
        int length = message.Payload.Length;
        // An oversized payload is kept only as far as the quarantine will store it.
        var kept = length > _keepBytes ? message.Payload[..Math.Min(length, _quarantineKeep)] : message.Payload;
        long now = Environment.TickCount64;
        Interlocked.Exchange(ref _lastMessageAt, now);
        // At most once a second: a handler that fails on every message is reported, not once per message.
        if (now - _faultsCheckedAt >= 1000)
        {
            _faultsCheckedAt = now;
            ReportCallbackFaults();
            ReportRedelivered();
        }
        bool acknowledged = message.Qos > 0 && !message.Ack.IsNone;
        if (acknowledged)
        {
            if (_redeliveries.IsRedelivery(in message, kept, length, out long journaled))
            {
                Interlocked.Increment(ref _redelivered);
                // Acknowledged once that copy is durable; the pending list stays in sequence order.
                _pending.Add(Math.Max(journaled, _lastSequence), message.Ack, _stopping.Token);
                return;
            }
            if (!_options.CleanSession && _intake.AtBound)
            {
                Interlocked.Increment(ref _heldAtBound);
                _intake.NoteBound(); // the journal may have filled from another source: pause all the same
                return;
            }
        }
        var frame = _intake.Stamp(message.Topic, kept, message.Qos, length, acknowledged ? message.PacketId : 0);
        if (!_intake.Append(frame, _stopping.Token, out long sequence)) return;
        _lastSequence = sequence;
        if (!acknowledged) return;
        _redeliveries.Journaled(message.PacketId, message.Topic, frame.Payload, length, sequence);
        // Full only when the broker sends more than the receive maximum we announced: wait for room.
        _pending.Add(sequence, message.Ack, _stopping.Token);
    }

    /// <summary>
    /// The acknowledging loop: waits until the journal has synced the newest pending message, then
    /// acknowledges in order every pending one the journal reports durable. Acknowledgements of a
    /// connection that has ended are dropped by the client (the broker delivers those messages again).
    /// Ends when the source has disconnected.
    /// </summary>
    private async Task AcknowledgeDurableAsync(PendingAcks pending, CancellationToken ct)
    {
        await Task.Yield();
        var retry = MinDelay;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                long newest = await pending.WaitNewestAsync(ct);
                if (_intake.DurableSequence < newest) await _intake.WaitDurableAsync(newest, ct);
                long durable = _intake.DurableSequence;
                while (pending.TryTake(durable, out long sequence, out var ack))
                    if (await _client.AcknowledgeAsync(ack, ct)) _redeliveries.Acknowledged(ack.PacketId, sequence);
                retry = MinDelay;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The journal could not make the messages durable (a failed sync): nothing is acknowledged,
                // the broker keeps them; try again with backoff.
                LogAcknowledgeFailed(pending.Count, e.GetType().Name, e.Message, retry.TotalSeconds);
                try { await Task.Delay(retry, _time, ct); } catch (OperationCanceledException) { return; }
                retry = Next(retry);
            }
        }
    }

    /// <summary>Before a disconnect we ask for (pause, shutdown): waits, for a bounded time, until what is
    /// already in the journal is acknowledged, so that the broker does not deliver it a second time.</summary>
    private async Task DrainAcknowledgementsAsync(CancellationToken ct)
    {
        var pending = _pending;
        if (!_client.IsConnected) return;
        long newest = pending.Newest;
        if (newest < 0) return;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await pending.WaitTakenAsync(newest, bound.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Not durable in time: those messages stay unacknowledged and the broker sends them again.
            LogDrainTimedOut(pending.Count);
        }
    }

    /// <summary>Logs the faults the client caught in its callbacks since the last report (a message
    /// handler that threw lost that message's journal append).</summary>
    private void ReportCallbackFaults()
    {
        long faults = _client.CallbackFaults;
        long reported = Interlocked.Read(ref _faultsReported);
        if (faults <= reported || Interlocked.CompareExchange(ref _faultsReported, faults, reported) != reported) return;
        LogCallbackFaults(faults - reported, faults, _client.LastCallbackFault ?? "");
    }

    private void ReportRedelivered()
    {
        long total = Interlocked.Read(ref _redelivered);
        long reported = Interlocked.Exchange(ref _redeliveredReported, total);
        if (total > reported) LogRedelivered(total - reported, total);
    }

    void IFrameIntakeEvents.JournalWriteFailed(string error) => LogJournalWriteFailed(error);

    void IFrameIntakeEvents.JournalWriteRecovered(int retries) => LogJournalWriteRecovered(retries);

    public override void Dispose()
    {
        _stopping.Dispose();
        _ackStop.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "MQTT source starting: broker {Endpoint}, client id {ClientId}, {Client}, {Session} session")]
    private partial void LogStarting(string endpoint, string clientId, string client, string session);

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

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Journal has room again ({Bytes} bytes): reading from the broker ({Held} messages that arrived at the bound were left unacknowledged for it to deliver again)")]
    private partial void LogResumed(long bytes, long held);

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

    [LoggerMessage(EventId = 1023, Level = LogLevel.Warning, Message = "The MQTT client caught {New} exceptions in its callbacks ({Total} since start) so that none reached the library; last: {Last}")]
    private partial void LogCallbackFaults(long @new, long total, string last);

    [LoggerMessage(EventId = 1043, Level = LogLevel.Information, Message = "{New} messages the broker delivered again were already in the journal: acknowledged, not stored twice ({Total} since start)")]
    private partial void LogRedelivered(long @new, long total);

    [LoggerMessage(EventId = 1044, Level = LogLevel.Information, Message = "The journal holds {Count} QoS 1/2 messages of the previous run whose acknowledgement may not have left; if the broker delivers them again they are not stored twice")]
    private partial void LogRecoveredDeliveries(int count);

    [LoggerMessage(EventId = 1041, Level = LogLevel.Error, Message = "Cannot acknowledge {Count} stored messages: the journal did not make them durable ({Type}: {Error}); the broker keeps them, retrying in {Seconds} s")]
    private partial void LogAcknowledgeFailed(int count, string type, string error, double seconds);

    [LoggerMessage(EventId = 1042, Level = LogLevel.Warning, Message = "Disconnecting with {Count} stored messages not yet acknowledged (the journal did not sync them within 5 s): the broker delivers them again")]
    private partial void LogDrainTimedOut(int count);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "{Count} messages could not be put in the journal (shutdown or disk failure)")]
    private partial void LogDroppedAtShutdown(long count);
}
