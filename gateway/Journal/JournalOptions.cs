namespace CityGateway.Journal;

public enum FsyncPolicy
{
    /// <summary>Rely on the OS page cache: survives a killed process, not a power cut.</summary>
    None,
    /// <summary>fsync the open segment every <see cref="JournalOptions.FsyncIntervalMs"/>.</summary>
    Interval,
    /// <summary>fsync after every appended frame: survives a power cut, costs a disk flush per frame.</summary>
    Always,
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

    public FsyncPolicy Fsync { get; set; } = FsyncPolicy.None;

    public int FsyncIntervalMs { get; set; } = 1000;

    /// <summary>With the journal off: frames held in memory before the sources wait.</summary>
    public int MemoryQueueCapacity { get; set; } = 10000;
}
