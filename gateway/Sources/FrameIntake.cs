using CityGateway.Core;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Pipeline;

namespace CityGateway.Sources;

/// <summary>What an intake tells its source, so that the source logs it under its own category and event ids.</summary>
public interface IFrameIntakeEvents
{
    /// <summary>The first failed append of a frame (disk full, read-only); the intake holds the frame and retries.</summary>
    void JournalWriteFailed(string error);

    /// <summary>An append succeeded after <paramref name="retries"/> failed ones.</summary>
    void JournalWriteRecovered(int retries);
}

/// <summary>
/// The one way a source hands a received frame to the journal, shared by every source so that none
/// can drift: stamp the receive time and count the frame, append it (holding it and retrying while
/// the disk refuses), and signal when an append leaves the journal at its size bound. Called on the
/// source's own thread (the MQTT client's receiving thread, a serial port's reader), which it blocks
/// while it retries: that is the backpressure. One instance per reading thread. The append returns the
/// frame's sequence, so that a source that acknowledges (MQTT QoS 1) can wait until it is durable.
/// </summary>
public sealed class FrameIntake
{
    private readonly string _source;
    private readonly IFrameLog _log;
    private readonly GatewayMetrics _metrics;
    private readonly GatewayClock _clock;
    private readonly IFrameIntakeEvents _events;
    private readonly TimeSpan _retryEvery;
    private readonly SemaphoreSlim _boundReached = new(0, 1);
    private volatile bool _atBound;
    private long _dropped;

    public FrameIntake(string source, IFrameLog log, GatewayMetrics metrics, GatewayClock clock, IFrameIntakeEvents events, TimeSpan? retryEvery = null)
    {
        _clock = clock;
        _source = source;
        _log = log;
        _metrics = metrics;
        _events = events;
        _retryEvery = retryEvery ?? TimeSpan.FromSeconds(1);
    }

    /// <summary>Frames that could not be appended because intake was stopping (the log closed, or a
    /// retry interrupted by shutdown).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>The journal is at its size bound: a source that polls stops reading now.</summary>
    public bool AtBound => _log.IsFull;

    public JournalStats Stats => _log.Stats;

    /// <summary>Makes the frame: copies the (already cut) payload, stamps the receive time once, and
    /// counts it as received with its length as it arrived.</summary>
    public RawFrame Stamp(string topic, ReadOnlySpan<byte> payload, int qos, int originalLength, int deliveryId = 0)
    {
        var frame = new RawFrame(_source, topic, payload.ToArray(), _clock.ReceiveNs(), qos, originalLength) { DeliveryId = deliveryId };
        _metrics.FrameReceived(originalLength);
        return frame;
    }

    /// <summary><see cref="Stamp"/> and <see cref="Append"/>.</summary>
    public bool Take(string topic, ReadOnlySpan<byte> payload, int qos, int originalLength, CancellationToken stopping) =>
        Append(Stamp(topic, payload, qos, originalLength), stopping, out _);

    /// <summary><see cref="Append(RawFrame, CancellationToken, out long)"/> without the sequence.</summary>
    public bool Append(RawFrame frame, CancellationToken stopping) => Append(frame, stopping, out _);

    /// <summary>
    /// Appends the frame, retrying every second while the disk refuses it. Returns true once it is in
    /// the journal, with its sequence there (not yet durable under a syncing policy: see
    /// <see cref="IFrameLog.DurableSequence"/>); false when intake is stopping (counted in
    /// <see cref="Dropped"/>): the frame is then not acknowledged, so a persistent session delivers it again.
    /// </summary>
    public bool Append(RawFrame frame, CancellationToken stopping, out long sequence)
    {
        sequence = -1;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                sequence = _log.Append(frame);
                if (attempt > 0) _events.JournalWriteRecovered(attempt);
                break;
            }
            catch (JournalClosedException)
            {
                // Only while shutting down, after the log was closed.
                Interlocked.Increment(ref _dropped);
                return false;
            }
            catch (IOException e)
            {
                // The disk refused the write (full, read-only). Hold this thread and retry: the source
                // stops reading meanwhile, and the broker or the tty keeps what follows.
                if (attempt == 0) _events.JournalWriteFailed(e.Message);
                if (stopping.WaitHandle.WaitOne(_retryEvery))
                {
                    Interlocked.Increment(ref _dropped);
                    return false;
                }
            }
        }
        NoteBound();
        return true;
    }

    /// <summary>Signals <see cref="BoundReachedAsync"/> when the journal is at its bound and that has not
    /// been signalled yet: after an append, or when a source declines a frame because of the bound.</summary>
    public void NoteBound()
    {
        if (!_atBound && _log.IsFull)
        {
            _atBound = true;
            if (_boundReached.CurrentCount == 0) _boundReached.Release();
        }
    }

    /// <summary>Completes once after an append left the journal at its bound, until <see cref="WaitForRoomAsync"/>
    /// has seen room again. For a source that is told rather than polling (MQTT).</summary>
    public Task BoundReachedAsync(CancellationToken ct) => _boundReached.WaitAsync(ct);

    /// <summary>The highest journal sequence that is durable (<see cref="IFrameLog.DurableSequence"/>).</summary>
    public long DurableSequence => _log.DurableSequence;

    /// <summary>Completes once every frame up to <paramref name="sequence"/> is durable.</summary>
    public ValueTask WaitDurableAsync(long sequence, CancellationToken ct) => _log.WaitDurableAsync(sequence, ct);

    /// <summary>Completes when the journal is below its bound again (90 %).</summary>
    public async Task WaitForRoomAsync(CancellationToken ct)
    {
        await _log.WaitForRoomAsync(ct).ConfigureAwait(false);
        _atBound = false;
    }
}
