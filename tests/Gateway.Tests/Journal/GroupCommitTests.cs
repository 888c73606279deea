using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace CityGateway.Tests.Journal;

/// <summary>
/// Durability of the journal: the durable sequence and its waiters, per Fsync policy. The journal's
/// sync function is replaced by <see cref="SyncProbe"/>, which runs the real fdatasync but can hold it,
/// fail it, and records what was synced, so a test can show that nothing counts as durable before the
/// sync that covers it has returned.
/// </summary>
public sealed class GroupCommitTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static JournalOptions Group(string dir, int frames = 1_000_000, long bytes = 1L << 40, int delayMs = 10_000, long segmentBytes = 1 << 20) => new()
    {
        Path = dir, SegmentBytes = segmentBytes, MaxBytes = 1L << 30,
        Fsync = FsyncPolicy.Group, GroupCommitFrames = frames, GroupCommitBytes = bytes, GroupCommitMaxDelayMs = delayMs,
    };

    private static RawFrame Frame(int i, int payloadBytes = 100) => new(
        "mqtt", $"city/json/traffic/t-{i % 5:D4}", Encoding.UTF8.GetBytes(new string('x', payloadBytes)),
        1_700_000_000_000_000_000 + i, 1, payloadBytes);

    /// <summary>The journal's sync function for tests: the real fdatasync, optionally held or failing.</summary>
    private sealed class SyncProbe
    {
        private readonly ManualResetEventSlim _open = new(initialState: true);
        public FileJournal? Journal;
        public volatile int FailuresLeft;
        public readonly SemaphoreSlim Entered = new(0);
        public readonly ConcurrentQueue<(string Path, long AppendedAtEntry)> Synced = new();
        private long _ceiling = long.MinValue;
        private int _calls;

        /// <summary>The last sequence appended when a sync that has returned began: nothing above it may be durable.</summary>
        public long Ceiling => Interlocked.Read(ref _ceiling);

        public int Calls => Volatile.Read(ref _calls);

        /// <summary>Holds every sync until released; disposing releases them (declared after the journal,
        /// it runs before the journal's Dispose, whose closing sync would otherwise wait forever when a test fails).</summary>
        public IDisposable Hold()
        {
            _open.Reset();
            return new Releaser(this);
        }

        private sealed class Releaser(SyncProbe probe) : IDisposable
        {
            public void Dispose() => probe.Release();
        }

        public void Release() => _open.Set();

        public void Sync(SafeFileHandle handle)
        {
            long appended = Journal?.Stats.Appended ?? long.MinValue;
            Interlocked.Increment(ref _calls);
            Entered.Release();
            _open.Wait();
            if (FailuresLeft > 0)
            {
                FailuresLeft--;
                throw new IOException("injected: disk refused the flush");
            }
            SegmentSync.DataSync(handle);
            // /proc/self/fd names the file behind the handle: which segment was synced.
            var path = File.ResolveLinkTarget($"/proc/self/fd/{handle.DangerousGetHandle()}", returnFinalTarget: false)?.FullName ?? "?";
            Synced.Enqueue((path, appended));
            long current;
            while ((current = Interlocked.Read(ref _ceiling)) < appended && Interlocked.CompareExchange(ref _ceiling, appended, current) != current) { }
        }
    }

    private static FileJournal Open(JournalOptions options, SyncProbe probe)
    {
        var journal = new FileJournal(options, NullLogger.Instance, null, probe.Sync);
        probe.Journal = journal;
        return journal;
    }

    [Fact]
    public void Group_is_the_default_policy()
    {
        var o = new JournalOptions();
        Assert.Equal(FsyncPolicy.Group, o.Fsync);
        Assert.Equal(1000, o.GroupCommitFrames);
        Assert.Equal(1L << 20, o.GroupCommitBytes);
        Assert.Equal(2, o.GroupCommitMaxDelayMs);
    }

    [Fact]
    public async Task A_waiter_completes_only_after_its_groups_sync_has_returned()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        using var journal = Open(Group(dir.Path, frames: 10), probe);
        using var held = probe.Hold();
        long last = -1;
        for (int i = 0; i < 10; i++) last = journal.Append(Frame(i));
        Assert.True(await probe.Entered.WaitAsync(Patience), "ten frames close the group and start its sync");
        bool returned = false;
        var waiter = journal.WaitDurableAsync(last, CancellationToken.None).AsTask()
            .ContinueWith(_ => Volatile.Read(ref returned), TaskContinuationOptions.ExecuteSynchronously);
        var first = journal.WaitDurableAsync(0, CancellationToken.None).AsTask();
        // Appends go on while the disk is held; they belong to the next group.
        var more = Task.Run(() => journal.Append(Frame(10)));
        Assert.Equal(10, await more.WaitAsync(Patience));
        Assert.False(waiter.IsCompleted || first.IsCompleted, "no waiter completes while its group's sync is held");
        Assert.True(journal.DurableSequence < 0);
        Volatile.Write(ref returned, true);
        probe.Release();
        Assert.True(await waiter.WaitAsync(Patience), "the waiter completed after the sync returned");
        await first.WaitAsync(Patience);
        Assert.True(journal.DurableSequence >= last);
        Assert.True(journal.DurableSequence <= probe.Ceiling);
    }

    [Fact]
    public async Task A_group_closes_at_its_frame_count()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        using var journal = Open(Group(dir.Path, frames: 5), probe);
        for (int i = 0; i < 4; i++) journal.Append(Frame(i));
        var wait = journal.WaitDurableAsync(3, CancellationToken.None).AsTask();
        Assert.Equal(0, probe.Calls);
        journal.Append(Frame(4));
        var sw = Stopwatch.StartNew();
        await wait.WaitAsync(Patience);
        // The delay bound is 10 s: only the count can have closed the group this soon.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"closed after {sw.Elapsed}");
        Assert.Equal(4, journal.DurableSequence);
        Assert.Equal(4, probe.Synced.First().AppendedAtEntry);
    }

    [Fact]
    public async Task A_group_closes_at_its_byte_bound()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        // A record of a 1000-byte payload is a little over 1000 bytes: three of them pass 3000.
        using var journal = Open(Group(dir.Path, bytes: 3000), probe);
        journal.Append(Frame(0, 1000));
        journal.Append(Frame(1, 1000));
        var wait = journal.WaitDurableAsync(1, CancellationToken.None).AsTask();
        Assert.Equal(0, probe.Calls);
        journal.Append(Frame(2, 1000));
        var sw = Stopwatch.StartNew();
        await wait.WaitAsync(Patience);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"closed after {sw.Elapsed}");
        Assert.Equal(2, journal.DurableSequence);
    }

    [Fact]
    public async Task A_group_closes_at_its_delay_after_its_first_frame()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        using var journal = Open(Group(dir.Path, delayMs: 100), probe);
        var sw = Stopwatch.StartNew();
        long seq = journal.Append(Frame(0));
        await journal.WaitDurableAsync(seq, CancellationToken.None).AsTask().WaitAsync(Patience);
        var took = sw.Elapsed;
        Assert.True(took >= TimeSpan.FromMilliseconds(100), $"a lone frame waited {took.TotalMilliseconds} ms, less than the group's delay");
        Assert.Equal(seq, journal.DurableSequence);
    }

    [Fact]
    public async Task Rolled_segments_are_synced_before_their_frames_count_and_the_appender_does_not_wait_for_them()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        using var journal = Open(Group(dir.Path, delayMs: 20, segmentBytes: 4096), probe);
        journal.Append(Frame(0, 300));
        Assert.True(await probe.Entered.WaitAsync(Patience));
        using var held = probe.Hold(); // the next group's sync will wait
        await journal.WaitDurableAsync(0, CancellationToken.None).AsTask().WaitAsync(Patience);
        // About 13 records a segment: 60 frames roll it four times while the disk is held.
        var appends = Task.Run(() => { long s = 0; for (int i = 1; i <= 60; i++) s = journal.Append(Frame(i, 300)); return s; });
        long last = await appends.WaitAsync(Patience);
        Assert.True(journal.Stats.Segments >= 5, $"{journal.Stats.Segments} segments");
        Assert.True(await probe.Entered.WaitAsync(Patience));
        Assert.Equal(0, journal.DurableSequence);
        probe.Release();
        await journal.WaitDurableAsync(last, CancellationToken.None).AsTask().WaitAsync(Patience);
        var segments = Directory.GetFiles(dir.Path, "*.seg").Select(Path.GetFullPath).Order().ToList();
        var synced = probe.Synced.Select(s => s.Path).ToList();
        foreach (var segment in segments) Assert.Contains(segment, synced);
        // Older segments first: the order of the first sync of each segment is the order of the segments.
        Assert.Equal(segments, synced.Where(segments.Contains).Distinct().ToList());
    }

    [Fact]
    public async Task Closing_the_journal_syncs_and_releases_every_waiter()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        var journal = Open(Group(dir.Path), probe);
        for (int i = 0; i < 3; i++) journal.Append(Frame(i));
        var waiters = Enumerable.Range(0, 3).Select(s => journal.WaitDurableAsync(s, CancellationToken.None).AsTask()).ToList();
        Assert.All(waiters, w => Assert.False(w.IsCompleted));
        Assert.Equal(0, probe.Calls);
        journal.Dispose();
        await Task.WhenAll(waiters).WaitAsync(Patience);
        Assert.True(probe.Calls >= 1, "the closing sync ran");
        Assert.Equal(2, journal.DurableSequence);
        await journal.WaitDurableAsync(2, CancellationToken.None);
        await Assert.ThrowsAsync<JournalClosedException>(() => journal.WaitDurableAsync(3, CancellationToken.None).AsTask());
        Assert.Throws<JournalClosedException>(() => journal.Append(Frame(3)));
    }

    [Fact]
    public async Task A_failed_sync_completes_no_waiter_and_is_retried()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe { FailuresLeft = 2 };
        using var journal = Open(Group(dir.Path, delayMs: 1), probe);
        long seq = journal.Append(Frame(0));
        var wait = journal.WaitDurableAsync(seq, CancellationToken.None).AsTask();
        await Wait.UntilAsync(() => probe.Calls >= 3 || wait.IsCompleted, Patience, () => "the sync to be retried");
        await wait.WaitAsync(Patience);
        Assert.Equal(0, probe.FailuresLeft); // it completed only once a sync succeeded
        Assert.Equal(seq, journal.DurableSequence);
    }

    [Fact]
    public async Task When_the_closing_sync_fails_waiters_get_JournalClosedException()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe { FailuresLeft = int.MaxValue };
        var journal = Open(Group(dir.Path, delayMs: 1), probe);
        long seq = journal.Append(Frame(0));
        var wait = journal.WaitDurableAsync(seq, CancellationToken.None).AsTask();
        await Wait.UntilAsync(() => probe.Calls >= 1, Patience, () => "the first sync");
        journal.Dispose();
        await Assert.ThrowsAsync<JournalClosedException>(() => wait.WaitAsync(Patience));
        Assert.True(journal.DurableSequence < seq);
        await Assert.ThrowsAsync<JournalClosedException>(() => journal.WaitDurableAsync(seq, CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task Many_appenders_and_waiters_in_any_order_the_durable_sequence_rises_and_never_passes_the_syncs()
    {
        using var dir = new TempDir("journal-group");
        var probe = new SyncProbe();
        using var journal = Open(Group(dir.Path, frames: 64, delayMs: 2, segmentBytes: 64 << 10), probe);
        const int appenders = 4, perAppender = 3000;
        using var stop = new CancellationTokenSource();
        var violations = new ConcurrentQueue<string>();
        var monitor = Task.Run(() =>
        {
            long previous = long.MinValue;
            while (!stop.IsCancellationRequested)
            {
                long durable = journal.DurableSequence;
                long ceiling = probe.Ceiling; // read after: it only rises
                if (durable < previous) violations.Enqueue($"durable went back from {previous} to {durable}");
                if (durable > ceiling && durable >= 0) violations.Enqueue($"durable {durable} is ahead of the syncs ({ceiling})");
                previous = durable;
                Thread.Yield();
            }
        });
        var early = new ConcurrentQueue<string>();
        var writers = Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var waits = new List<Task>(perAppender);
            var seqs = new List<long>(perAppender);
            for (int i = 0; i < perAppender; i++)
            {
                long seq = journal.Append(Frame(a * perAppender + i, 60));
                seqs.Add(seq);
                if (i % 3 == 0) waits.Add(Check(seq)); // some wait at once, the rest later in a shuffled order
            }
            foreach (var seq in seqs.OrderBy(_ => Random.Shared.Next())) waits.Add(Check(seq));
            await Task.WhenAll(waits);
        })).ToList();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        stop.Cancel();
        await monitor;
        Assert.Empty(violations);
        Assert.Empty(early);
        Assert.Equal(appenders * perAppender - 1, journal.DurableSequence);
        Assert.True(probe.Calls < appenders * perAppender / 4, $"{probe.Calls} syncs for {appenders * perAppender} frames: frames are grouped");

        async Task Check(long seq)
        {
            await journal.WaitDurableAsync(seq, CancellationToken.None);
            long durable = journal.DurableSequence;
            if (durable < seq) early.Enqueue($"waiter {seq} completed at durable {durable}");
            if (probe.Ceiling < seq) early.Enqueue($"waiter {seq} completed before a sync covering it returned ({probe.Ceiling})");
        }
    }

    [Fact]
    public async Task Always_is_durable_when_Append_returns_with_one_sync_per_frame()
    {
        using var dir = new TempDir("journal-always");
        var probe = new SyncProbe();
        using var journal = Open(new JournalOptions { Path = dir.Path, Fsync = FsyncPolicy.Always }, probe);
        for (int i = 0; i < 20; i++)
        {
            long seq = journal.Append(Frame(i));
            Assert.Equal(seq, journal.DurableSequence);
            Assert.True(journal.WaitDurableAsync(seq, CancellationToken.None).IsCompletedSuccessfully);
        }
        // The sync of a frame runs inside its Append, before the frame counts as appended.
        Assert.Equal(20, probe.Calls);
        Assert.Equal(18, probe.Ceiling);
        await Task.CompletedTask;
    }

    [Fact]
    public void None_reports_every_appended_frame_durable_and_never_syncs()
    {
        using var dir = new TempDir("journal-none");
        var probe = new SyncProbe();
        using var journal = Open(new JournalOptions { Path = dir.Path, Fsync = FsyncPolicy.None }, probe);
        long seq = -1;
        for (int i = 0; i < 20; i++) seq = journal.Append(Frame(i));
        Assert.Equal(seq, journal.DurableSequence);
        Assert.True(journal.WaitDurableAsync(seq, CancellationToken.None).IsCompletedSuccessfully);
        journal.Dispose();
        Assert.Equal(0, probe.Calls);
    }

    [Fact]
    public async Task Interval_is_durable_after_the_next_interval_sync()
    {
        using var dir = new TempDir("journal-interval");
        var probe = new SyncProbe();
        using var journal = Open(new JournalOptions { Path = dir.Path, Fsync = FsyncPolicy.Interval, FsyncIntervalMs = 50 }, probe);
        long seq = journal.Append(Frame(0));
        await journal.WaitDurableAsync(seq, CancellationToken.None).AsTask().WaitAsync(Patience);
        Assert.True(probe.Calls >= 1);
        Assert.True(journal.DurableSequence <= probe.Ceiling);
        Assert.Equal(seq, journal.DurableSequence);
    }

    [Fact]
    public void Waiting_for_a_frame_not_yet_appended_is_refused()
    {
        using var dir = new TempDir("journal-group");
        using var journal = new FileJournal(Group(dir.Path), NullLogger.Instance);
        journal.Append(Frame(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => journal.WaitDurableAsync(5, CancellationToken.None));
    }

    [Fact]
    public async Task A_cancelled_wait_ends_without_the_sync()
    {
        using var dir = new TempDir("journal-group");
        using var journal = new FileJournal(Group(dir.Path), NullLogger.Instance);
        long seq = journal.Append(Frame(0));
        using var cts = new CancellationTokenSource();
        var wait = journal.WaitDurableAsync(seq, cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Patience));
        Assert.True(journal.DurableSequence < seq);
    }

    [Theory]
    [InlineData(0, 1L, 2, "Gateway:Journal:GroupCommitFrames")]
    [InlineData(1000, 0L, 2, "Gateway:Journal:GroupCommitBytes")]
    [InlineData(1000, 1L, -1, "Gateway:Journal:GroupCommitMaxDelayMs")]
    [InlineData(1000, 1L, 10_001, "Gateway:Journal:GroupCommitMaxDelayMs")]
    public void Bad_group_settings_fail_validation_naming_the_key(int frames, long bytes, int delay, string key)
    {
        using var dir = new TempDir("journal-valid");
        var o = Group(dir.Path, frames, bytes, delay);
        var result = new JournalOptionsValidator().Validate(null, o);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(key + ":", StringComparison.Ordinal));
        Assert.True(new JournalOptionsValidator().Validate(null, Group(dir.Path, 1000, 1 << 20, 2)).Succeeded);
    }

    [Fact]
    public void An_unknown_policy_value_fails_validation_naming_the_key()
    {
        using var dir = new TempDir("journal-valid");
        var o = new JournalOptions { Path = dir.Path, Fsync = (FsyncPolicy)42 };
        var result = new JournalOptionsValidator().Validate(null, o);
        Assert.Contains(result.Failures!, f => f.StartsWith("Gateway:Journal:Fsync:", StringComparison.Ordinal));
    }
}
