using System.Text;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CityGateway.Tests.Journal;

public sealed class FileJournalTests
{
    private static JournalOptions Options(string dir, long segmentBytes = 1 << 20, long maxBytes = 64 << 20) =>
        new() { Path = dir, SegmentBytes = segmentBytes, MaxBytes = maxBytes };

    private static RawFrame Frame(int i, int payloadBytes = 40) => new(
        "mqtt", $"city/json/environment/env-{i % 7:D4}",
        Encoding.UTF8.GetBytes($"{{\"seq\":{i},\"pad\":\"{new string('x', Math.Max(0, payloadBytes - 20))}\"}}"),
        1_700_000_000_000_000_000 + i, i % 3, payloadBytes + 5);

    private static async Task<List<LoggedFrame>> ReadAvailable(FileJournal journal)
    {
        journal.Complete();
        var list = new List<LoggedFrame>();
        while (await journal.ReadAsync(CancellationToken.None) is { } f) list.Add(f);
        return list;
    }

    private static void AssertSame(RawFrame expected, RawFrame actual)
    {
        Assert.Equal(expected.Source, actual.Source);
        Assert.Equal(expected.Topic, actual.Topic);
        Assert.Equal(expected.Payload, actual.Payload);
        Assert.Equal(expected.ReceivedAtNs, actual.ReceivedAtNs);
        Assert.Equal(expected.Qos, actual.Qos);
        Assert.Equal(expected.OriginalLength, actual.OriginalLength);
        Assert.Equal(expected.DeliveryId, actual.DeliveryId);
    }

    [Fact]
    public async Task Delivery_ids_are_kept_and_after_a_restart_the_newest_frames_that_carry_one_are_reported()
    {
        using var dir = new TempDir("journal");
        // Every third frame is a QoS 0 or serial frame without a delivery id (written as a version 1 record).
        RawFrame Numbered(int i) => i % 3 == 0
            ? new RawFrame(i % 2 == 0 ? "serial" : "mqtt", "/dev/ttyUSB0", Encoding.UTF8.GetBytes($"seq={i}"), 1_000 + i, 0, 5)
            : new RawFrame("mqtt", $"city/json/env-{i:D4}", Encoding.UTF8.GetBytes($"{{\"seq\":{i}}}"), 1_000 + i, 1, 10) { DeliveryId = 1 + i % 65535 };
        var frames = Enumerable.Range(0, 3000).Select(Numbered).ToList();
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 16384), NullLogger.Instance))
        {
            Assert.Empty(journal.RecoveredDeliveries("mqtt", 100));
            foreach (var f in frames) journal.Append(f);
            journal.Commit(1500);
        }
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 16384), NullLogger.Instance))
        {
            var recovered = journal.RecoveredDeliveries("mqtt", 100);
            var expected = Enumerable.Range(0, 3000).Where(i => i % 3 != 0).TakeLast(100).ToList();
            Assert.Equal(expected.Select(i => (long)i), recovered.Select(r => r.Sequence));
            foreach (var r in recovered) AssertSame(frames[(int)r.Sequence], r.Frame);
            Assert.Empty(journal.RecoveredDeliveries("serial", 100));
            // Everything reads back, with or without a delivery id.
            var read = await ReadAvailable(journal);
            Assert.Equal(Enumerable.Range(1501, 1499).Select(i => (long)i), read.Select(r => r.Sequence));
            foreach (var r in read) AssertSame(frames[(int)r.Sequence], r.Frame);
        }
    }

    [Fact]
    public async Task Frames_are_read_back_in_order_with_every_field_across_segments()
    {
        using var dir = new TempDir("journal");
        var frames = Enumerable.Range(0, 500).Select(i => Frame(i, 100 + i % 50)).ToList();
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 8192), NullLogger.Instance))
        {
            foreach (var f in frames) journal.Append(f);
            Assert.True(journal.Stats.Segments > 3, "the frames should span several segments");
            var read = await ReadAvailable(journal);
            Assert.Equal(frames.Count, read.Count);
            for (int i = 0; i < frames.Count; i++)
            {
                Assert.Equal(i, read[i].Sequence);
                AssertSame(frames[i], read[i].Frame);
            }
        }
    }

    [Fact]
    public async Task After_a_restart_reading_resumes_after_the_committed_sequence()
    {
        using var dir = new TempDir("journal");
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 4096), NullLogger.Instance))
        {
            for (int i = 0; i < 200; i++) journal.Append(Frame(i));
            journal.Commit(119);
        }
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 4096), NullLogger.Instance))
        {
            journal.Append(Frame(200));
            var read = await ReadAvailable(journal);
            Assert.Equal(Enumerable.Range(120, 81).Select(i => (long)i), read.Select(r => r.Sequence));
            Assert.Equal(1_700_000_000_000_000_000 + 120, read[0].Frame.ReceivedAtNs);
            Assert.Equal(81, journal.Stats.Pending);
        }
    }

    [Fact]
    public async Task Committed_segments_are_deleted_and_the_size_bound_frees_up()
    {
        using var dir = new TempDir("journal");
        using var journal = new FileJournal(Options(dir.Path, segmentBytes: 4096, maxBytes: 16384), NullLogger.Instance);
        int i = 0;
        while (!journal.IsFull) journal.Append(Frame(i++, 200));
        Assert.True(journal.Stats.Bytes >= 16384);
        var room = journal.WaitForRoomAsync(CancellationToken.None);
        Assert.False(room.IsCompleted);
        int files = Directory.GetFiles(dir.Path, "*.seg").Length;
        journal.Commit(i - 1);
        await room.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(journal.IsFull);
        Assert.True(Directory.GetFiles(dir.Path, "*.seg").Length < files, "committed segments are deleted");
        Assert.Equal(0, journal.Stats.Pending);
    }

    /// <summary>
    /// Past the first segment the open segment's end is unbounded; reading it must go on from where
    /// the reader is, not re-open the file and skip from its start for every frame (which made the
    /// reader quadratic once a gateway had written its first segment, 64 MiB by default).
    /// </summary>
    [Fact]
    public async Task Reading_the_open_segment_after_a_roll_does_not_rescan_it()
    {
        using var dir = new TempDir("journal");
        using (var small = new FileJournal(Options(dir.Path, segmentBytes: 2048), NullLogger.Instance))
            for (int i = 0; i < 20; i++) small.Append(Frame(i, 200));
        // Reopened with large segments: the open one starts at sequence 20 and takes all that follows.
        using var journal = new FileJournal(Options(dir.Path, segmentBytes: 64 << 20, maxBytes: 1L << 30), NullLogger.Instance);
        const int total = 20_000;
        for (int i = 20; i < total; i++) journal.Append(Frame(i, 200));
        // About 5 MB in the open segment: read in well under a second; re-scanned per frame, minutes.
        var reader = Task.Run(async () =>
        {
            var list = new List<long>(total);
            while (list.Count < total && await journal.ReadAsync(CancellationToken.None) is { } f) list.Add(f.Sequence);
            return list;
        });
        var read = await reader.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(0, total).Select(i => (long)i), read);
    }

    [Fact]
    public async Task The_reader_moves_on_from_a_recovered_segment_deleted_by_a_commit()
    {
        using var dir = new TempDir("journal");
        long lastOfFirstRun;
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 4096), NullLogger.Instance))
        {
            lastOfFirstRun = -1;
            for (int i = 0; i < 30; i++) lastOfFirstRun = journal.Append(Frame(i, 200));
        }
        using (var journal = new FileJournal(Options(dir.Path, segmentBytes: 1 << 20), NullLogger.Instance))
        {
            // Replay every recovered frame, commit them all (their segments are deleted), then a new one arrives.
            for (long s = 0; s <= lastOfFirstRun; s++) Assert.Equal(s, (await journal.ReadAsync(CancellationToken.None))!.Value.Sequence);
            journal.Commit(lastOfFirstRun);
            long next = journal.Append(Frame(99, 200));
            Assert.Equal(lastOfFirstRun + 1, next);
            Assert.Equal(next, (await journal.ReadAsync(CancellationToken.None))!.Value.Sequence);
        }
    }

    [Fact]
    public async Task Reader_waits_for_appends_from_another_thread()
    {
        using var dir = new TempDir("journal");
        using var journal = new FileJournal(Options(dir.Path, segmentBytes: 4096), NullLogger.Instance);
        var reader = Task.Run(async () =>
        {
            var got = new List<long>();
            while (got.Count < 1000 && await journal.ReadAsync(CancellationToken.None) is { } f) got.Add(f.Sequence);
            return got;
        });
        var writer = Task.Run(() => { for (int i = 0; i < 1000; i++) journal.Append(Frame(i)); });
        await writer;
        var seqs = await reader.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), seqs);
    }

    /// <summary>
    /// A crash mid-write leaves the last segment cut at an arbitrary byte: start-up must keep every
    /// complete record before the cut and drop only the torn one, at every possible cut position.
    /// </summary>
    [Fact]
    public async Task Torn_last_record_is_cut_off_and_every_complete_record_before_it_is_recovered()
    {
        using var master = new TempDir("journal-master");
        var frames = Enumerable.Range(0, 60).Select(i => Frame(i, 30 + i)).ToList();
        long[] recordEnds;
        using (var journal = new FileJournal(Options(master.Path), NullLogger.Instance))
        {
            var ends = new List<long>();
            foreach (var f in frames)
            {
                journal.Append(f);
                ends.Add(journal.Stats.Bytes);
            }
            recordEnds = ends.ToArray();
        }
        var segment = Assert.Single(Directory.GetFiles(master.Path, "*.seg"));
        var bytes = await File.ReadAllBytesAsync(segment);
        Assert.Equal(recordEnds[^1], bytes.Length);

        // Every cut inside the last three records, and a spread of cuts across the whole file.
        var cuts = Enumerable.Range((int)recordEnds[^4], (int)(bytes.Length - recordEnds[^4]) + 1)
            .Concat(Enumerable.Range(0, 40).Select(k => (int)(bytes.Length * (long)k / 40)))
            .Distinct();
        foreach (var cut in cuts)
        {
            using var dir = new TempDir("journal-torn");
            await File.WriteAllBytesAsync(Path.Combine(dir.Path, Path.GetFileName(segment)), bytes.AsSpan(0, cut).ToArray());
            int complete = recordEnds.Count(end => end <= cut);
            using var journal = new FileJournal(Options(dir.Path), NullLogger.Instance);
            var read = await ReadAvailable(journal);
            Assert.True(complete == read.Count, $"cut at byte {cut}: expected {complete} records, recovered {read.Count}");
            for (int i = 0; i < complete; i++) AssertSame(frames[i], read[i].Frame);
            // The torn tail was removed from the file itself.
            var file = new FileInfo(Path.Combine(dir.Path, Path.GetFileName(segment)));
            if (complete == 0) Assert.True(!file.Exists || file.Length == 0);
            else Assert.Equal(recordEnds[complete - 1], file.Length);
        }
    }

    [Fact]
    public async Task A_corrupted_byte_in_the_last_record_is_detected_by_its_checksum()
    {
        using var dir = new TempDir("journal");
        using (var journal = new FileJournal(Options(dir.Path), NullLogger.Instance))
            for (int i = 0; i < 10; i++) journal.Append(Frame(i));
        var segment = Directory.GetFiles(dir.Path, "*.seg").OrderBy(p => p).First();
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[^3] ^= 0x5A;
        await File.WriteAllBytesAsync(segment, bytes);
        using var reopened = new FileJournal(Options(dir.Path), NullLogger.Instance);
        var read = await ReadAvailable(reopened);
        Assert.Equal(9, read.Count);
    }

    [Fact]
    public void A_second_journal_on_the_same_folder_is_refused_until_the_first_is_closed()
    {
        using var dir = new TempDir("journal");
        using (var first = new FileJournal(Options(dir.Path), NullLogger.Instance))
        {
            first.Append(Frame(1));
            var e = Assert.Throws<JournalInUseException>(() => new FileJournal(Options(dir.Path), NullLogger.Instance));
            Assert.Contains("Gateway:Journal:Path", e.Message);
        }
        using var reopened = new FileJournal(Options(dir.Path), NullLogger.Instance);
        Assert.Equal(1, reopened.Stats.Pending);
    }
}
