namespace CityGateway.Journal;

/// <summary>
/// What an appended frame survives, and so what <see cref="IFrameLog.DurableSequence"/> means.
/// In every policy a frame is in the page cache when Append returns (it survives a killed process).
/// </summary>
public enum FsyncPolicy
{
    /// <summary>Rely on the OS page cache: survives a killed process, not a power cut. Every appended
    /// frame counts as durable at once (the page cache is all this policy promises).</summary>
    None,
    /// <summary>fdatasync the open segment every <see cref="JournalOptions.FsyncIntervalMs"/>; a frame is
    /// durable (survives a power cut) after the next interval's sync.</summary>
    Interval,
    /// <summary>fdatasync after every appended frame, inside Append: durable when Append returns; costs a
    /// disk flush per frame on the appending thread.</summary>
    Always,
    /// <summary>Group commit: appends go to the page cache without waiting for the disk; a sync thread
    /// fdatasyncs once per group (closed at <see cref="JournalOptions.GroupCommitFrames"/> frames,
    /// <see cref="JournalOptions.GroupCommitBytes"/> bytes or <see cref="JournalOptions.GroupCommitMaxDelayMs"/>
    /// after its first frame) and then marks the group durable.</summary>
    Group,
}

public sealed class JournalOptions
{
    /// <summary>Keep every received frame on disk until InfluxDB has accepted its points. Off: an in-memory queue.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Folder of the journal's segment files.</summary>
    public string Path { get; set; } = "data/journal";

    /// <summary>Size bound: at this many bytes on disk the sources stop taking frames until writes catch up.</summary>
    public long MaxBytes { get; set; } = 1L << 30;

    /// <summary>Size of one segment file; committed segments are deleted whole.</summary>
    public long SegmentBytes { get; set; } = 64L << 20;

    /// <summary>Age bound: a frame still unprocessed this long after it was received is moved to the
    /// quarantine (reason journal_expired, replayable) instead of being written late.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);

    public FsyncPolicy Fsync { get; set; } = FsyncPolicy.Group;

    public int FsyncIntervalMs { get; set; } = 1000;

    /// <summary>Group policy: a group is synced once it holds this many frames.</summary>
    public int GroupCommitFrames { get; set; } = 1000;

    /// <summary>Group policy: a group is synced once it holds this many bytes of records.</summary>
    public long GroupCommitBytes { get; set; } = 1L << 20;

    /// <summary>Group policy: a group is synced at the latest this long after its first frame (0: as soon
    /// as the previous sync has returned).</summary>
    public int GroupCommitMaxDelayMs { get; set; } = 2;

    /// <summary>With the journal off: frames held in memory before the sources wait.</summary>
    public int MemoryQueueCapacity { get; set; } = 10000;
}
