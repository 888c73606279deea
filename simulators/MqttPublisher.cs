namespace CityGateway.Simulators;

/// <summary>Thrown when the broker cannot be reached or refuses the connection.</summary>
public sealed class SimulatorConnectionException(string message) : Exception(message);

/// <summary>
/// Publishes through <see cref="MqttPublishClient"/> (MQTTnet) and tracks completions: a QoS 1/2
/// publish is complete when the broker acknowledges it, a QoS 0 one when it has been written to the
/// socket. At most <see cref="SimulatorOptions.MaxInFlight"/> publishes are outstanding at once.
/// </summary>
internal sealed class MqttPublisher : IDisposable
{
    private readonly MqttPublishClient _client;
    private readonly SemaphoreSlim _slots;
    private readonly Action<string> _log;
    private readonly Action<int> _onRejected;
    private readonly Dictionary<(int Tag, int Qos), Completion> _states = new();
    private long _published;
    private long _completed;
    private long _acknowledged;
    private long _rejected;

    public MqttPublisher(SimulatorOptions o, Action<string> log, Action<int> onRejected)
    {
        _slots = new SemaphoreSlim(o.MaxInFlight, o.MaxInFlight);
        _log = log;
        _onRejected = onRejected;
        _client = new MqttPublishClient(new MqttPublishClientOptions
        {
            Url = o.BrokerUrl,
            ClientId = o.ClientId,
            Username = string.IsNullOrEmpty(o.Username) ? null : o.Username,
            Password = o.Password,
            MaxInFlight = o.MaxInFlight,
        });
        _client.Completed = OnCompleted;
        _client.Reconnected = () => _log($"reconnected to {_client.Endpoint}");
        _client.ConnectionLost = cause => _log($"connection to {_client.Endpoint} lost: {cause}; reconnecting");
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
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new SimulatorConnectionException($"no CONNACK from {_client.Endpoint} within {timeout.TotalSeconds:0} s");
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(remaining);
            string error;
            try
            {
                await _client.ConnectAsync(attempt.Token, () => _log("the broker refused MQTT 5; falling back to MQTT 3.1.1")).ConfigureAwait(false);
                return;
            }
            catch (MqttConnectionRefusedException e)
            {
                throw new SimulatorConnectionException($"{_client.Endpoint} refused the connection: {e.Message}");
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException)
            {
                throw new SimulatorConnectionException($"no CONNACK from {_client.Endpoint} within {timeout.TotalSeconds:0} s");
            }
            catch (Exception e) when (e is not ObjectDisposedException)
            {
                error = MqttPublishClient.Describe(e);
            }
            if (DateTime.UtcNow + delay > deadline)
                throw new SimulatorConnectionException($"cannot connect to {_client.Endpoint}: {error}");
            _log($"cannot connect to {_client.Endpoint}: {error}; retrying in {delay.TotalSeconds:0.##} s");
            await Task.Delay(delay, ct).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
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
    /// broker rejects the message. Called from one task at a time.</summary>
    public bool Publish(string topic, byte[] payload, int qos, int tag, out string? error, out bool disconnected)
    {
        if (!_states.TryGetValue((tag, qos), out var state)) _states[(tag, qos)] = state = new Completion(tag, qos);
        // Counted first: the completion may run inside TryPublish.
        Interlocked.Increment(ref _published);
        if (_client.TryPublish(topic, payload, qos, state, out error, out disconnected)) return true;
        Interlocked.Decrement(ref _published);
        _slots.Release();
        return false;
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

    public void Stop() => _client.Stop();

    public void Dispose()
    {
        _client.Dispose();
        _slots.Dispose();
    }

    /// <summary>Runs once per accepted publish, on an MQTTnet thread or inside <see cref="Publish"/>.</summary>
    private void OnCompleted(object? state, int reasonCode)
    {
        var c = (Completion)state!;
        if (reasonCode >= 0x80)
        {
            Interlocked.Increment(ref _rejected);
            _onRejected(c.Tag);
        }
        else if (c.Qos > 0)
            Interlocked.Increment(ref _acknowledged);
        Interlocked.Increment(ref _completed);
        _slots.Release();
    }

    /// <summary>What a completion needs to know of its publish; one instance per (tag, QoS), shared.</summary>
    private sealed record Completion(int Tag, int Qos);
}
