namespace CityGateway.Sources.Mqtt;

/// <summary>
/// The QoS 1/2 messages that are in the journal but not yet acknowledged, as (journal sequence,
/// acknowledgement) pairs in the order they came, which is the order of their sequences (one client
/// thread appends). Bounded: the broker sends no more unacknowledged messages than the receive maximum
/// we announce (Gateway:Mqtt:MaxInflight), so the capacity is that; a broker that sends more (MQTT
/// 3.1.1 has no receive maximum) makes <see cref="Add"/> wait for room, which holds the client's
/// thread as a full disk does. Adding and taking allocate nothing.
/// </summary>
internal sealed class PendingAcks
{
    private readonly (long Sequence, MqttAck Ack)[] _ring;
    private readonly SemaphoreSlim _room;
    private readonly object _lock = new();
    private int _head, _count;
    // Set while the acknowledging loop waits for a first pair, or a drain for progress.
    private TaskCompletionSource? _added;
    private TaskCompletionSource? _taken;

    public PendingAcks(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new (long, MqttAck)[capacity];
        _room = new SemaphoreSlim(capacity, capacity);
    }

    public int Capacity => _ring.Length;

    public int Count
    {
        get { lock (_lock) return _count; }
    }

    /// <summary>The sequence of the newest pair, or -1 when there is none.</summary>
    public long Newest
    {
        get { lock (_lock) return _count == 0 ? -1 : _ring[(_head + _count - 1) % _ring.Length].Sequence; }
    }

    /// <summary>Adds a pair, waiting while the structure is full; false when <paramref name="stopping"/>
    /// ended the wait (the message is then not acknowledged and comes again).</summary>
    public bool Add(long sequence, MqttAck ack, CancellationToken stopping)
    {
        try
        {
            _room.Wait(stopping);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        TaskCompletionSource? added;
        lock (_lock)
        {
            _ring[(_head + _count) % _ring.Length] = (sequence, ack);
            _count++;
            added = _added;
            _added = null;
        }
        added?.TrySetResult();
        return true;
    }

    /// <summary>Completes with the newest sequence once there is a pair.</summary>
    public async ValueTask<long> WaitNewestAsync(CancellationToken ct)
    {
        while (true)
        {
            TaskCompletionSource wait;
            lock (_lock)
            {
                if (_count > 0) return _ring[(_head + _count - 1) % _ring.Length].Sequence;
                // One left cancelled by an earlier wait is replaced (a set one was already taken out).
                if (_added is null || _added.Task.IsCompleted) _added = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _added;
            }
            await WhenSetAsync(wait, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Awaits the signal itself, with the cancellation completing it, rather than <c>WaitAsync(ct)</c>:
    /// the client's thread, which sets the signal for every message that finds the loop idle, then only
    /// queues this continuation, where a WaitAsync promise would have it allocate a work item each time.
    /// </summary>
    private static async Task WhenSetAsync(TaskCompletionSource signal, CancellationToken ct)
    {
        using (ct.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetCanceled(), signal))
            await signal.Task.ConfigureAwait(false);
    }

    /// <summary>Takes the oldest pair when its sequence is at most <paramref name="durable"/>.</summary>
    public bool TryTake(long durable, out long sequence, out MqttAck ack)
    {
        TaskCompletionSource? taken;
        lock (_lock)
        {
            if (_count == 0 || _ring[_head].Sequence > durable)
            {
                (sequence, ack) = (-1, default);
                return false;
            }
            (sequence, ack) = _ring[_head];
            _ring[_head] = default;
            _head = (_head + 1) % _ring.Length;
            _count--;
            taken = _taken;
            _taken = null;
        }
        _room.Release();
        taken?.TrySetResult();
        return true;
    }

    /// <summary>Completes once every pair up to <paramref name="sequence"/> has been taken.</summary>
    public async Task WaitTakenAsync(long sequence, CancellationToken ct)
    {
        while (true)
        {
            TaskCompletionSource wait;
            lock (_lock)
            {
                if (_count == 0 || _ring[_head].Sequence > sequence) return;
                if (_taken is null || _taken.Task.IsCompleted) _taken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _taken;
            }
            await WhenSetAsync(wait, ct).ConfigureAwait(false);
        }
    }
}
