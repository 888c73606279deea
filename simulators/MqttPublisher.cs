using System.Collections.Concurrent;
using CityGateway.Sources.Mqtt;

namespace CityGateway.Simulators;

/// <summary>Thrown when the broker cannot be reached or refuses the connection.</summary>
public sealed class SimulatorConnectionException(string message) : Exception(message);

/// <summary>
/// Publishes through <see cref="MosquittoClient"/> and tracks completions: a QoS 1/2 publish is
/// complete when the broker acknowledges it, a QoS 0 one when it has been written to the socket.
/// At most a fixed number of publishes are outstanding at once.
/// </summary>
internal sealed class MqttPublisher : IDisposable
{
    private const int ErrNoConnection = 4;      // MOSQ_ERR_NO_CONN
    private const int ErrConnectionLost = 7;    // MOSQ_ERR_CONN_LOST
    private const int MqttV5UnsupportedProtocol = 0x84;
    private const int MqttV3UnacceptableProtocol = 1;

    private readonly MosquittoClient _client;
    private readonly SemaphoreSlim _slots;
    private readonly int _maxInFlight;
    private readonly Action<string> _log;
    private readonly Action<int> _onRejected;
    private readonly ConcurrentDictionary<int, Pending> _pending = new();
    private TaskCompletionSource<int> _connack = NewConnack();
    private long _published;
    private long _completed;
    private long _acknowledged;
    private long _rejected;
    private volatile bool _stopping;
    private bool _everConnected;

    public MqttPublisher(SimulatorOptions o, Action<string> log, Action<int> onRejected)
    {
        _maxInFlight = o.MaxInFlight;
        _slots = new SemaphoreSlim(_maxInFlight, _maxInFlight);
        _log = log;
        _onRejected = onRejected;
        _client = new MosquittoClient(new MqttConnectionOptions
        {
            Url = o.BrokerUrl,
            ClientId = o.ClientId,
            CleanSession = true,
            Username = string.IsNullOrEmpty(o.Username) ? null : o.Username,
            Password = o.Password,
            MaxInflight = _maxInFlight,
        });
        _client.Connected = OnConnected;
        _client.Disconnected = OnDisconnected;
        _client.Published = OnPublished;
    }

    public string Endpoint => _client.Endpoint;

    public bool IsConnected => _client.IsConnected;

    public long Published => Interlocked.Read(ref _published);

    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    public long Rejected => Interlocked.Read(ref _rejected);

    public long Outstanding => Interlocked.Read(ref _published) - Interlocked.Read(ref _completed);

    /// <summary>Connects, retrying with backoff while the broker cannot be reached, until the broker
    /// accepts the connection or <paramref name="timeout"/> passes.</summary>
    public async Task ConnectAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        var delay = TimeSpan.FromMilliseconds(250);
        bool socketOpen = false;
        string? lastError = null;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var connack = Volatile.Read(ref _connack);
            if (!socketOpen)
            {
                lastError = _client.TryConnect();
                if (lastError is null) socketOpen = true;
                else
                {
                    if (DateTime.UtcNow + delay > deadline)
                        throw new SimulatorConnectionException($"cannot connect to {_client.Endpoint}: {lastError}");
                    _log($"cannot connect to {_client.Endpoint}: {lastError}; retrying in {delay.TotalSeconds:0.##} s");
                    await Task.Delay(delay, ct).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                    continue;
                }
            }
            // The socket is open; the network thread reconnects by itself from here. Wait for CONNACK.
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new SimulatorConnectionException($"no CONNACK from {_client.Endpoint} within {timeout.TotalSeconds:0} s");
            int rc;
            try
            {
                rc = await connack.Task.WaitAsync(remaining, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new SimulatorConnectionException($"no CONNACK from {_client.Endpoint} within {timeout.TotalSeconds:0} s");
            }
            if (rc == 0) return;
            if (rc is MqttV5UnsupportedProtocol or MqttV3UnacceptableProtocol && _client.ProtocolVersion == 5)
            {
                _log("the broker refused MQTT 5; falling back to MQTT 3.1.1");
                _client.Stop();
                _client.UseProtocol311();
                Volatile.Write(ref _connack, NewConnack());
                socketOpen = false;
                continue;
            }
            _client.Stop();
            throw new SimulatorConnectionException($"{_client.Endpoint} refused the connection: {MosquittoClient.DescribeConnack(rc)}");
        }
    }

    /// <summary>Waits for a free in-flight slot. Call once before each <see cref="Publish"/>.</summary>
    public ValueTask AcquireAsync(CancellationToken ct)
    {
        if (_slots.Wait(0)) return ValueTask.CompletedTask;
        return new ValueTask(_slots.WaitAsync(ct));
    }

    /// <summary>Publishes with a slot taken by <see cref="AcquireAsync"/>; returns false (and frees
    /// the slot) when the client refuses the message, with <paramref name="disconnected"/> set when
    /// that is only because the connection is down. <paramref name="tag"/> is handed back if the
    /// broker rejects the message.</summary>
    public bool Publish(string topic, byte[] payload, int qos, int tag, out string? error, out bool disconnected)
    {
        int mid;
        try
        {
            mid = _client.Publish(topic, payload, qos);
        }
        catch (MqttException e)
        {
            _slots.Release();
            error = e.Message;
            disconnected = e.Code is ErrNoConnection or ErrConnectionLost;
            return false;
        }
        error = null;
        disconnected = false;
        Interlocked.Increment(ref _published);
        var p = _pending.GetOrAdd(mid, static _ => new Pending());
        p.Tag = tag;
        p.Qos = qos;
        if (Interlocked.Increment(ref p.Parts) == 2) Complete(mid, p);
        return true;
    }

    /// <summary>Waits until the client is connected; false when <paramref name="until"/> (measured
    /// on <paramref name="clock"/>) passes first.</summary>
    public async Task<bool> WaitConnectedAsync(System.Diagnostics.Stopwatch clock, TimeSpan? until, CancellationToken ct)
    {
        while (!_client.IsConnected)
        {
            if (until is { } u && clock.Elapsed >= u) return false;
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>Waits until every publish has completed or <paramref name="timeout"/> passes; returns
    /// the number still outstanding.</summary>
    public async Task<long> DrainAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Outstanding > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10).ConfigureAwait(false);
        return Math.Max(0, Outstanding);
    }

    public void Stop()
    {
        _stopping = true;
        _client.Stop();
    }

    public void Dispose()
    {
        _stopping = true;
        _client.Dispose();
        _slots.Dispose();
    }

    // The callbacks below run on libmosquitto's network thread.

    private void OnConnected(int rc, bool sessionPresent)
    {
        if (rc == 0 && _everConnected) _log($"reconnected to {_client.Endpoint}");
        if (rc == 0) _everConnected = true;
        Volatile.Read(ref _connack).TrySetResult(rc);
    }

    private void OnDisconnected(int rc)
    {
        // Before the first CONNACK, ConnectAsync reports the outcome itself.
        if (_stopping || rc == 0 || !_everConnected) return;
        _log($"connection to {_client.Endpoint} lost: {MosquittoClient.DescribeError(rc)}; reconnecting");
    }

    private void OnPublished(int mid, int reasonCode)
    {
        var p = _pending.GetOrAdd(mid, static _ => new Pending());
        p.ReasonCode = reasonCode;
        if (Interlocked.Increment(ref p.Parts) == 2) Complete(mid, p);
    }

    /// <summary>Runs once both the publish call and its completion callback have been seen, in either order.</summary>
    private void Complete(int mid, Pending p)
    {
        _pending.TryRemove(mid, out _);
        if (p.ReasonCode >= 0x80)
        {
            Interlocked.Increment(ref _rejected);
            _onRejected(p.Tag);
        }
        else if (p.Qos > 0)
            Interlocked.Increment(ref _acknowledged);
        Interlocked.Increment(ref _completed);
        _slots.Release();
    }

    private static TaskCompletionSource<int> NewConnack() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Pending
    {
        public int Parts;
        public int Tag;
        public int Qos;
        public volatile int ReasonCode;
    }
}
