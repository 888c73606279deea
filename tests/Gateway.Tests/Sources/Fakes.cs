using System.Collections.Concurrent;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Sources;
using CityGateway.Sources.Mqtt;

namespace CityGateway.Tests.Sources;

/// <summary>The MQTT seam without a broker: connect results are scripted, subscriptions answered by a rule,
/// losses and messages raised by the test. Every call is recorded.</summary>
internal sealed class FakeMqttConnection : IMqttConnection
{
    private readonly object _lock = new();
    private readonly List<MqttProtocol> _connects = [];
    private readonly List<MqttSubscription[]> _subscribes = [];
    private readonly List<string[]> _unsubscribes = [];
    private volatile bool _connected;
    private int _disconnects;
    // The current connection: an acknowledgement handle of an earlier one sends nothing.
    private object _connection = new();

    /// <summary>Answers to the next connects, in order; once empty, every connect is accepted.</summary>
    public ConcurrentQueue<MqttConnectResult> ConnectResults { get; } = new();

    /// <summary>Callback faults the fake client reports, set by a test.</summary>
    public long CallbackFaults { get; set; }

    public string? LastCallbackFault { get; set; }

    /// <summary>How the broker answers each filter; granted at the QoS asked for unless changed.</summary>
    public Func<MqttSubscription, MqttSubscribeResult> Answer { get; set; } = s => MqttSubscribeResult.Grant(s.Filter, s.Qos);

    public string Endpoint => "fake-broker:1883";
    public string Implementation => "fake client";
    public bool IsConnected => _connected;
    public MqttMessageHandler? MessageReceived { get; set; }
    public Action<MqttDisconnect>? ConnectionLost { get; set; }

    public MqttProtocol[] Connects { get { lock (_lock) return [.. _connects]; } }
    public MqttSubscription[][] Subscribes { get { lock (_lock) return [.. _subscribes]; } }
    public string[][] Unsubscribes { get { lock (_lock) return [.. _unsubscribes]; } }
    public int Disconnects => Volatile.Read(ref _disconnects);

    private readonly ConcurrentQueue<int> _acks = new();

    /// <summary>The packet ids acknowledged (sent on their own connection), in the order they were.</summary>
    public int[] Acks => [.. _acks];

    /// <summary>Acknowledgements asked for on a connection that had ended (nothing sent).</summary>
    public int StaleAcks => Volatile.Read(ref _staleAcks);

    private int _staleAcks;

    /// <summary>Whether the broker reports our session kept on the accepted connects.</summary>
    public bool SessionPresent { get; set; } = true;

    public Task<MqttConnectResult> ConnectAsync(MqttProtocol protocol, CancellationToken ct)
    {
        lock (_lock) _connects.Add(protocol);
        var result = ConnectResults.TryDequeue(out var next) ? next : MqttConnectResult.Accepted(SessionPresent);
        Volatile.Write(ref _connection, new object());
        _connected = result.Outcome == MqttConnectOutcome.Accepted;
        return Task.FromResult(result);
    }

    public Task<MqttSubscribeResult[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct)
    {
        lock (_lock) _subscribes.Add([.. subscriptions]);
        return Task.FromResult(subscriptions.Select(Answer).ToArray());
    }

    public Task<MqttUnsubscribeResult[]> UnsubscribeAsync(IReadOnlyList<string> filters, CancellationToken ct)
    {
        lock (_lock) _unsubscribes.Add([.. filters]);
        return Task.FromResult(filters.Select(f => new MqttUnsubscribeResult(f, true)).ToArray());
    }

    /// <summary>How many acknowledgements had been sent at each disconnect.</summary>
    public ConcurrentQueue<int> AcksAtDisconnect { get; } = new();

    public Task DisconnectAsync(CancellationToken ct)
    {
        AcksAtDisconnect.Enqueue(_acks.Count);
        _connected = false;
        Interlocked.Increment(ref _disconnects);
        return Task.CompletedTask;
    }

    public ValueTask<bool> AcknowledgeAsync(MqttAck ack, CancellationToken ct)
    {
        if (!_connected || !ReferenceEquals(ack.Handle, Volatile.Read(ref _connection)))
        {
            Interlocked.Increment(ref _staleAcks);
            return ValueTask.FromResult(false);
        }
        _acks.Enqueue(ack.PacketId);
        return ValueTask.FromResult(true);
    }

    /// <summary>The broker goes away (or sends DISCONNECT) under an accepted connection.</summary>
    public void Lose(MqttDisconnect reason)
    {
        _connected = false;
        ConnectionLost?.Invoke(reason);
    }

    /// <summary>The broker delivers a PUBLISH on the current connection; <paramref name="duplicate"/> is its DUP flag.</summary>
    public void Deliver(string topic, byte[] payload, int qos = 1, int packetId = 1, bool duplicate = false) =>
        MessageReceived?.Invoke(new MqttIncoming(topic, payload, qos, false, packetId, qos > 0 ? Volatile.Read(ref _connection) : null, duplicate));

    public void Dispose()
    {
    }
}

/// <summary>A frame log whose size bound the test sets, and whose appends can be made to fail.</summary>
internal sealed class TestFrameLog(long firstSequence = 0) : IFrameLog
{
    private readonly ConcurrentQueue<RawFrame> _frames = new();
    private TaskCompletionSource _room = NewRoom();
    private volatile bool _full;
    private int _failures;

    public RawFrame[] Frames => [.. _frames];

    /// <summary>The next <paramref name="count"/> appends throw as a full disk would.</summary>
    public void FailNext(int count) => Volatile.Write(ref _failures, count);

    /// <summary>Appends from now on leave the journal at its bound.</summary>
    public void Fill()
    {
        _room = NewRoom();
        _full = true;
    }

    public void MakeRoom()
    {
        _full = false;
        _room.TrySetResult();
    }

    public long Append(RawFrame frame)
    {
        if (Interlocked.Decrement(ref _failures) >= 0) throw new IOException("No space left on device");
        lock (_durableLock)
        {
            _frames.Enqueue(frame);
            long sequence = firstSequence + _frames.Count - 1;
            if (!_holdDurability) _durable = sequence;
            return sequence;
        }
    }

    private readonly object _durableLock = new();
    private bool _holdDurability;
    // What an earlier run appended (below firstSequence) is durable.
    private long _durable = firstSequence - 1;
    private readonly List<(long Sequence, TaskCompletionSource Done)> _durableWaiters = [];
    private int _durableWaits;

    /// <summary>From now on appended frames are not durable until <see cref="ReleaseDurability"/>: a sync that has not returned.</summary>
    public void HoldDurability()
    {
        lock (_durableLock) _holdDurability = true;
    }

    /// <summary>Everything appended so far is durable, and so is every later append.</summary>
    public void ReleaseDurability()
    {
        List<TaskCompletionSource> done;
        lock (_durableLock)
        {
            _holdDurability = false;
            _durable = firstSequence + _frames.Count - 1;
            done = _durableWaiters.Where(w => w.Sequence <= _durable).Select(w => w.Done).ToList();
            _durableWaiters.RemoveAll(w => w.Sequence <= _durable);
        }
        foreach (var d in done) d.TrySetResult();
    }

    /// <summary>How many times a caller waited for durability that had not come yet.</summary>
    public int DurableWaits => Volatile.Read(ref _durableWaits);

    public long DurableSequence
    {
        get { lock (_durableLock) return _durable; }
    }

    public ValueTask WaitDurableAsync(long sequence, CancellationToken ct)
    {
        TaskCompletionSource done;
        lock (_durableLock)
        {
            if (sequence <= _durable) return ValueTask.CompletedTask;
            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _durableWaiters.Add((sequence, done));
            _durableWaits++;
        }
        return new ValueTask(done.Task.WaitAsync(ct));
    }

    public bool IsFull => _full;

    public Task WaitForRoomAsync(CancellationToken ct) => _full ? _room.Task.WaitAsync(ct) : Task.CompletedTask;

    public JournalStats Stats => new(true, _full ? 100 : 10, 100, 1, _frames.Count, 0, _frames.Count, _full);

    /// <summary>What an earlier run left in the journal, as <see cref="RecoveredDeliveries"/> reports it.</summary>
    public List<LoggedFrame> Recovered { get; } = [];

    public IReadOnlyList<LoggedFrame> RecoveredDeliveries(string source, int max) =>
        Recovered.Where(f => f.Frame.Source == source && f.Frame.DeliveryId != 0).TakeLast(max).ToArray();

    public ValueTask<LoggedFrame?> ReadAsync(CancellationToken ct) => throw new NotSupportedException();
    public void Commit(long sequence) { }
    public void Complete() { }
    public void Dispose() { }

    private static TaskCompletionSource NewRoom() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Time that moves only when the test fires a timer: every delay asked for is recorded.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly object _lock = new();
    private readonly List<ManualTimer> _pending = [];
    private readonly List<TimeSpan> _requested = [];

    public TimeSpan[] Requested { get { lock (_lock) return [.. _requested]; } }

    public int Pending { get { lock (_lock) return _pending.Count; } }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _pending.Add(timer);
            _requested.Add(dueTime);
        }
        return timer;
    }

    /// <summary>Lets the oldest waiting delay elapse.</summary>
    public void FireNext()
    {
        ManualTimer timer;
        lock (_lock)
        {
            timer = _pending[0];
            _pending.RemoveAt(0);
        }
        timer.Fire();
    }

    private void Remove(ManualTimer timer)
    {
        lock (_lock) _pending.Remove(timer);
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => false;

        public void Dispose() => owner.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>What an intake reported to its source.</summary>
internal sealed class RecordedIntakeEvents : IFrameIntakeEvents
{
    public ConcurrentQueue<string> Events { get; } = new();

    public void JournalWriteFailed(string error) => Events.Enqueue("failed: " + error);

    public void JournalWriteRecovered(int retries) => Events.Enqueue($"recovered after {retries}");
}
