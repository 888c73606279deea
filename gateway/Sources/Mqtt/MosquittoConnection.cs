using Microsoft.Extensions.Options;
using CityGateway.Core;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// <see cref="IMqttConnection"/> over libmosquitto (<see cref="MosquittoClient"/>). libmosquitto answers
/// through callbacks on its network thread; this turns each CONNACK, SUBACK and UNSUBACK into the result
/// of the call that asked for it. Its own reconnecting is switched off: the source reconnects.
/// It cannot defer an acknowledgement (<see cref="IMqttConnection.DefersAcknowledgement"/> is false):
/// libmosquitto writes the PUBACK itself as soon as the message callback returns, so a message is
/// acknowledged once the journal has its append, not once the journal has synced it. A host that
/// loses power after the PUBACK and before the sync loses the message; Gateway:Mqtt:Client=mqttnet
/// acknowledges only what is durable.
/// </summary>
public sealed class MosquittoConnection : IMqttConnection
{
    /// <summary>Stands for "the connection ended before the broker answered".</summary>
    private const int NoAnswer = -1;

    private readonly MqttConnectionOptions _options;
    private readonly object _lock = new();
    // The answer may come back on the network thread before Subscribe has returned the message id,
    // so answers without a waiter yet are kept until the waiter is registered.
    private readonly Dictionary<int, TaskCompletionSource<int>> _subacks = new();
    private readonly Dictionary<int, int> _earlySubacks = new();
    private readonly Dictionary<int, TaskCompletionSource<int>> _unsubacks = new();
    private readonly HashSet<int> _earlyUnsubacks = new();
    private MosquittoClient? _client;
    private MqttMessageHandler? _messageReceived;
    private TaskCompletionSource<MqttConnectResult>? _connecting;
    private bool _accepted;
    private readonly StringPool _topics;

    public MosquittoConnection(IOptions<MqttConnectionOptions> options, StringPool topics)
    {
        _topics = topics;
        _options = options.Value;
        var (host, port, _) = _options.ParseUrl();
        Endpoint = $"{host}:{port}";
    }

    public string Endpoint { get; }

    public string Implementation => "libmosquitto " + MosquittoClient.LibraryVersion;

    public bool IsConnected => _client?.IsConnected == true;

    public long CallbackFaults => _client?.CallbackFaults ?? 0;

    public string? LastCallbackFault => _client?.LastCallbackFault;

    public MqttMessageHandler? MessageReceived
    {
        get => _messageReceived;
        set
        {
            _messageReceived = value;
            if (_client is { } client) client.MessageReceived = value;
        }
    }

    public Action<MqttDisconnect>? ConnectionLost { get; set; }

    public async Task<MqttConnectResult> ConnectAsync(MqttProtocol protocol, CancellationToken ct)
    {
        // Created on first use, so that a missing libmosquitto is reported by the source's loop.
        var client = _client ??= Create();
        // The previous connection's network thread has ended (or is stopped here) before a new one starts.
        client.Stop();
        client.UseProtocolVersion((int)protocol);
        var connecting = new TaskCompletionSource<MqttConnectResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _connecting = connecting;
            _accepted = false;
            _earlySubacks.Clear();
            _earlyUnsubacks.Clear();
        }
        try
        {
            var error = client.TryConnect();
            if (error is not null) return MqttConnectResult.Unreachable(error);
            // A broker that takes the socket but never answers is noticed here rather than at keep-alive.
            var answerBy = TimeSpan.FromSeconds(Math.Max(10, _options.KeepAliveSeconds));
            try
            {
                return await connecting.Task.WaitAsync(answerBy, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                client.Stop();
                return MqttConnectResult.Unreachable($"no CONNACK within {answerBy.TotalSeconds:F0} s");
            }
        }
        catch (OperationCanceledException)
        {
            client.Stop();
            throw;
        }
        finally
        {
            lock (_lock)
                if (_connecting == connecting) _connecting = null;
        }
    }

    public async Task<MqttSubscribeResult[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct)
    {
        var results = new MqttSubscribeResult[subscriptions.Count];
        var waits = new TaskCompletionSource<int>?[subscriptions.Count];
        var client = _client;
        for (int i = 0; i < subscriptions.Count; i++)
        {
            var (filter, qos) = subscriptions[i];
            if (client is null)
            {
                results[i] = MqttSubscribeResult.Refuse(filter, NoAnswer, "not connected");
                continue;
            }
            int rc = client.Subscribe(filter, qos, out int mid);
            if (rc != 0)
            {
                results[i] = MqttSubscribeResult.Refuse(filter, NoAnswer, MosquittoClient.DescribeError(rc));
                continue;
            }
            var answer = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_earlySubacks.Remove(mid, out int early)) answer.SetResult(early);
                else _subacks[mid] = answer;
            }
            waits[i] = answer;
        }
        for (int i = 0; i < waits.Length; i++)
        {
            if (waits[i] is not { } wait) continue;
            var filter = subscriptions[i].Filter;
            int code = await wait.Task.WaitAsync(ct).ConfigureAwait(false);
            results[i] = code switch
            {
                NoAnswer => MqttSubscribeResult.Refuse(filter, NoAnswer, "no answer: the connection ended"),
                >= 128 => MqttSubscribeResult.Refuse(filter, code, MosquittoClient.DescribeConnack(code)),
                _ => MqttSubscribeResult.Grant(filter, code),
            };
        }
        return results;
    }

    public async Task<MqttUnsubscribeResult[]> UnsubscribeAsync(IReadOnlyList<string> filters, CancellationToken ct)
    {
        var results = new MqttUnsubscribeResult[filters.Count];
        var waits = new TaskCompletionSource<int>?[filters.Count];
        var client = _client;
        for (int i = 0; i < filters.Count; i++)
        {
            if (client is null)
            {
                results[i] = new MqttUnsubscribeResult(filters[i], false);
                continue;
            }
            int rc = client.Unsubscribe(filters[i], out int mid);
            if (rc != 0)
            {
                results[i] = new MqttUnsubscribeResult(filters[i], false, MosquittoClient.DescribeError(rc));
                continue;
            }
            var answer = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_earlyUnsubacks.Remove(mid)) answer.SetResult(0);
                else _unsubacks[mid] = answer;
            }
            waits[i] = answer;
        }
        for (int i = 0; i < waits.Length; i++)
        {
            if (waits[i] is not { } wait) continue;
            int code = await wait.Task.WaitAsync(ct).ConfigureAwait(false);
            results[i] = new MqttUnsubscribeResult(filters[i], code != NoAnswer);
        }
        return results;
    }

    public Task DisconnectAsync(CancellationToken ct)
    {
        // Stop joins the network thread: no callback runs after it returns.
        _client?.Stop();
        FailPending();
        return Task.CompletedTask;
    }

    /// <summary>libmosquitto queues the PUBACK itself and writes it after the message callback returns,
    /// so a message stored within the callback is acknowledged after it is stored: nothing to do here.</summary>
    public void Acknowledge(in MqttIncoming message)
    {
    }

    public void Dispose()
    {
        _client?.Dispose();
        FailPending();
    }

    private MosquittoClient Create()
    {
        var client = new MosquittoClient(_options, _topics)
        {
            ReconnectsItself = false,
            MessageReceived = _messageReceived,
        };
        client.Connected = OnConnected;
        client.Disconnected = OnDisconnected;
        client.Subscribed = OnSubscribed;
        client.Unsubscribed = OnUnsubscribed;
        return client;
    }

    private void OnConnected(int rc, bool sessionPresent)
    {
        TaskCompletionSource<MqttConnectResult>? connecting;
        lock (_lock)
        {
            connecting = _connecting;
            _accepted = rc == 0 && connecting is not null;
        }
        connecting?.TrySetResult(rc == 0
            ? MqttConnectResult.Accepted(sessionPresent)
            : MqttConnectResult.Refused(rc, MosquittoClient.DescribeConnack(rc)));
    }

    private void OnDisconnected(int rc)
    {
        bool accepted;
        TaskCompletionSource<MqttConnectResult>? connecting;
        lock (_lock)
        {
            accepted = _accepted;
            _accepted = false;
            connecting = _connecting;
        }
        FailPending();
        // libmosquitto reports its own errors below 128 and the broker's DISCONNECT reason codes from 128.
        var lost = rc < 128
            ? new MqttDisconnect(MqttDisconnectKind.Transport, rc, MosquittoClient.DescribeError(rc))
            : new MqttDisconnect(MqttDisconnectKind.ByBroker, rc, MosquittoClient.DescribeConnack(rc));
        if (!accepted)
        {
            // Closed before a CONNACK (a refusal has already completed the connect).
            connecting?.TrySetResult(MqttConnectResult.Unreachable(lost.Reason));
            return;
        }
        if (rc != 0) ConnectionLost?.Invoke(lost);
    }

    private void OnSubscribed(int mid, int code)
    {
        TaskCompletionSource<int>? answer;
        lock (_lock)
            if (!_subacks.Remove(mid, out answer)) _earlySubacks[mid] = code;
        answer?.TrySetResult(code);
    }

    private void OnUnsubscribed(int mid)
    {
        TaskCompletionSource<int>? answer;
        lock (_lock)
            if (!_unsubacks.Remove(mid, out answer)) _earlyUnsubacks.Add(mid);
        answer?.TrySetResult(0);
    }

    /// <summary>Answers every SUBSCRIBE and UNSUBSCRIBE still waiting: the connection that carried them is gone.</summary>
    private void FailPending()
    {
        TaskCompletionSource<int>[] waiting;
        lock (_lock)
        {
            waiting = [.. _subacks.Values, .. _unsubacks.Values];
            _subacks.Clear();
            _unsubacks.Clear();
        }
        foreach (var answer in waiting) answer.TrySetResult(NoAnswer);
    }
}
