using System.Threading.Channels;
using CityGateway.Core;

namespace CityGateway.Journal;

/// <summary>
/// The frame log with the journal turned off: a bounded in-memory queue. Appends wait when it is
/// full (backpressure to the broker). Frames in it are lost if the process dies. There is nothing to
/// sync: it reports every frame as durable and durability waits complete at once (the interface's
/// defaults), so with the journal off an acknowledgement means only "received".
/// </summary>
public sealed class MemoryFrameLog(int capacity) : IFrameLog
{
    private readonly Channel<LoggedFrame> _queue = Channel.CreateBounded<LoggedFrame>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });
    private readonly object _lock = new();
    private long _next;
    private long _committed = -1;

    public long Append(RawFrame frame)
    {
        lock (_lock)
        {
            var item = new LoggedFrame(_next, frame);
            if (!_queue.Writer.TryWrite(item))
            {
                try
                {
                    _queue.Writer.WriteAsync(item).AsTask().GetAwaiter().GetResult();
                }
                catch (ChannelClosedException)
                {
                    throw new JournalClosedException();
                }
            }
            return _next++;
        }
    }

    public async ValueTask<LoggedFrame?> ReadAsync(CancellationToken ct)
    {
        while (await _queue.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            if (_queue.Reader.TryRead(out var item)) return item;
        return null;
    }

    public void Commit(long sequence) => Interlocked.Exchange(ref _committed, Math.Max(sequence, Interlocked.Read(ref _committed)));

    public void Complete() => _queue.Writer.TryComplete();

    public bool IsFull => false;

    public Task WaitForRoomAsync(CancellationToken ct) => Task.CompletedTask;

    public JournalStats Stats
    {
        get
        {
            long appended = Interlocked.Read(ref _next) - 1;
            long committed = Interlocked.Read(ref _committed);
            return new JournalStats(false, 0, 0, 0, appended, committed, Math.Max(0, appended - committed), false);
        }
    }

    public void Dispose() => Complete();
}
