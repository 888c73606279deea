using CityGateway.Core;

namespace CityGateway.Journal;

/// <summary>A frame and its position in the log.</summary>
public readonly record struct LoggedFrame(long Sequence, RawFrame Frame);

/// <summary>
/// Where sources put frames and the pipeline takes them: the on-disk journal, or an in-memory
/// queue when the journal is off. One reader; offsets are committed once InfluxDB has the data.
/// </summary>
public interface IFrameLog : IDisposable
{
    /// <summary>Appends a frame; when this returns, the frame survives a killed process (journal).
    /// Throws <see cref="JournalClosedException"/> once the log is closed.</summary>
    long Append(RawFrame frame);

    /// <summary>The next frame after the last one read; null once <see cref="Complete"/> was called and all was read.</summary>
    ValueTask<LoggedFrame?> ReadAsync(CancellationToken ct);

    /// <summary>Everything up to and including <paramref name="sequence"/> is stored; it may be discarded.</summary>
    void Commit(long sequence);

    /// <summary>No more appends (shutdown); readers finish what is there.</summary>
    void Complete();

    /// <summary>At the size bound: sources must stop taking frames.</summary>
    bool IsFull { get; }

    /// <summary>Completes when there is room again (below 90 % of the bound).</summary>
    Task WaitForRoomAsync(CancellationToken ct);

    JournalStats Stats { get; }

    /// <summary>The highest appended sequence that is as durable as the journal's Fsync policy
    /// promises (for a policy that syncs: its fdatasync has returned). A log that does not sync
    /// reports every appended frame as durable.</summary>
    long DurableSequence => long.MaxValue;

    /// <summary>Completes once every frame up to <paramref name="sequence"/> is durable (see
    /// <see cref="DurableSequence"/>); at once for a log that does not sync.</summary>
    ValueTask WaitDurableAsync(long sequence, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>The newest frames an earlier run of the process appended from <paramref name="source"/>
    /// with a <see cref="RawFrame.DeliveryId"/>, oldest first, at most <paramref name="max"/>; empty for a
    /// log that does not outlive the process.</summary>
    IReadOnlyList<LoggedFrame> RecoveredDeliveries(string source, int max) => [];
}

public readonly record struct JournalStats(bool Durable, long Bytes, long MaxBytes, int Segments, long Appended, long Committed, long Pending, bool Full);
