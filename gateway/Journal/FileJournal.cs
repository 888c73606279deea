using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using CityGateway.Core;
using Microsoft.Win32.SafeHandles;

namespace CityGateway.Journal;

/// <summary>
/// The segmented on-disk journal. Every frame is appended (length, CRC-32C, record) before it is
/// processed; a write system call per frame, so a frame survives a killed process as soon as
/// <see cref="Append"/> returns. The writer commits the sequence number of the last frame whose
/// points InfluxDB accepted; segments wholly below it are deleted. On open, a torn record at the
/// end of the last segment (a crash mid-write) is detected and cut off, and reading resumes after
/// the committed sequence.
/// <para>Durability (see <see cref="FsyncPolicy"/>): <see cref="DurableSequence"/> is the highest
/// sequence whose record has reached the disk as the policy promises. Group and Interval sync on a
/// thread of their own (the sync loop below), never on the appending thread; a rolled segment is
/// synced, and a new segment's directory entry too, before any frame in them counts as durable.
/// Waiters share one task per group, so waiting costs no allocation per frame.</para>
/// </summary>
public sealed partial class FileJournal : IFrameLog
{
    private const int HeaderBytes = 8;             // u32 body length, u32 CRC-32C of the body
    private const int MaxBodyBytes = 64 << 20;
    // Version 2 adds the frame's delivery id (u16) after the original length; frames without one are
    // written as version 1, which earlier releases read too.
    private const byte RecordVersion = 1;
    private const byte RecordVersionWithDelivery = 2;
    private const string SegmentExtension = ".seg";
    private const string CommittedFile = "committed";
    private const string LockFile = "journal.lock";

    private readonly JournalOptions _options;
    private readonly StringPool _names;
    private readonly ILogger _logger;
    private readonly string _dir;
    private readonly object _appendLock = new();
    private readonly object _segmentsLock = new();
    private readonly object _signalLock = new();
    private readonly List<Segment> _segments = new();
    private readonly FileStream _lock;
    private SafeFileHandle _writer = null!;
    private Segment _current = null!;
    private long _nextSequence;
    private long _lastAppended;
    private long _committed;
    private long _persistedCommit;
    private long _bytes;
    private bool _completed;
    private TaskCompletionSource? _dataWaiter;
    private TaskCompletionSource _room = NewRoomSignal(done: true);

    // Durability. The sync loop and appenders share these under _appendLock; waiters read them under _durableLock.
    private readonly Action<SafeFileHandle> _sync;
    private readonly Thread? _syncThread;
    private readonly object _durableLock = new();
    private readonly List<SafeFileHandle> _rolled = new();  // closed segments not yet synced (Group, Interval)
    private bool _directoryDirty;                           // a segment was created since the folder was last synced
    private int _groupFrames;
    private long _groupBytes;
    private long _groupStart;                               // Stopwatch timestamp of the open group's first frame
    private long _closedTarget;                             // last sequence of the last group handed to a sync
    private long _durable;
    private long _syncingTarget;                            // last sequence of the group being synced (= _durable when none)
    private TaskCompletionSource _syncingSignal = NewRoomSignal(done: true);
    private TaskCompletionSource _openSignal = NewRoomSignal(done: false);
    private bool _closedUndurable;                          // the closing sync failed: what was not durable never will be

    private (string Path, long Base)[] _recoveredTail = [];

    // Reader state: used by the single reader only.
    private FileStream? _readStream;
    private Segment? _readSegment;
    private long _readSequence;
    private byte[] _readBuffer = new byte[64 * 1024];

    private sealed class Segment(long baseSequence, string path)
    {
        public long Base { get; } = baseSequence;
        public string Path { get; } = path;
        public long Bytes;
        public long Count;
    }

    /// <param name="names">Where the sources and topics of the frames read back are pooled (the
    /// process's pool in the gateway; one of the journal's own when not given).</param>
    public FileJournal(JournalOptions options, ILogger logger, StringPool? names = null)
        : this(options, logger, names, sync: null)
    {
    }

    /// <param name="sync">How a segment is flushed to the disk (<see cref="SegmentSync.DataSync"/>);
    /// tests pass one that observes or delays the syncs.</param>
    internal FileJournal(JournalOptions options, ILogger logger, StringPool? names, Action<SafeFileHandle>? sync)
    {
        _sync = sync ?? SegmentSync.DataSync;
        _names = names ?? new StringPool(4096);
        _options = options;
        _logger = logger;
        _dir = System.IO.Path.GetFullPath(options.Path);
        Directory.CreateDirectory(_dir);
        _lock = TakeLock(_dir);
        try { Recover(); }
        catch
        {
            _lock.Dispose();
            throw;
        }
        _durable = _syncingTarget = _closedTarget = _lastAppended; // what is there was written by an earlier run
        if (options.Fsync is FsyncPolicy.Group or FsyncPolicy.Interval)
        {
            _syncThread = new Thread(SyncLoop) { IsBackground = true, Name = "journal-sync" };
            _syncThread.Start();
        }
        LogDurability(_dir, options.Fsync, options.GroupCommitFrames, options.GroupCommitBytes, options.GroupCommitMaxDelayMs, options.FsyncIntervalMs);
    }

    public string Folder => _dir;

    /// <summary>
    /// One process per journal: two writers would interleave records and delete each other's
    /// segments. The lock is an exclusive advisory lock (flock) on journal.lock, held while the
    /// journal is open; the kernel releases it when the process ends, however it ends.
    /// </summary>
    private FileStream TakeLock(string dir)
    {
        var path = System.IO.Path.Combine(dir, LockFile);
        FileStream stream;
        try
        {
            // FileShare.None is an exclusive flock on Linux: a second process gets a sharing violation.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new JournalInUseException(dir, e);
        }
        try
        {
            // For an operator looking at the folder: which process holds it.
            var owner = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId} on {Environment.MachineName}, since {DateTimeOffset.UtcNow:O}\n"));
            stream.SetLength(0);
            stream.Write(owner);
            stream.Flush();
        }
        catch (IOException e)
        {
            // The lock is what matters; the note only helps an operator.
            LogLockNoteFailed(path, e.Message);
        }
        return stream;
    }

    public long FirstUnreadSequence => _readSequence;

    public bool IsFull => Interlocked.Read(ref _bytes) >= _options.MaxBytes;

    public JournalStats Stats
    {
        get
        {
            int segments;
            lock (_segmentsLock) segments = _segments.Count;
            long appended = Interlocked.Read(ref _lastAppended);
            long committed = Interlocked.Read(ref _committed);
            return new JournalStats(true, Interlocked.Read(ref _bytes), _options.MaxBytes, segments, appended, committed,
                Math.Max(0, appended - committed), IsFull);
        }
    }

    // ---------------------------------------------------------------- recovery

    private void Recover()
    {
        _committed = ReadCommitted();
        _persistedCommit = _committed;
        var files = Directory.EnumerateFiles(_dir, "*" + SegmentExtension)
            .Select(p => (Path: p, Ok: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var b), Base: b))
            .Where(f => f.Ok)
            .OrderBy(f => f.Base)
            .ToList();
        foreach (var f in files)
        {
            var seg = new Segment(f.Base, f.Path) { Bytes = new FileInfo(f.Path).Length };
            _segments.Add(seg);
        }
        // Only the last segment can end in a torn record: earlier ones were closed before the next began.
        if (_segments.Count > 0)
        {
            var last = _segments[^1];
            var (count, validBytes, reason) = Scan(last.Path);
            if (validBytes < last.Bytes)
            {
                LogTornRecord(last.Path, validBytes, last.Bytes - validBytes, reason ?? "incomplete record");
                using (var fs = new FileStream(last.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                    fs.SetLength(validBytes);
                last.Bytes = validBytes;
            }
            last.Count = count;
            _nextSequence = last.Base + count;
            if (count == 0)
            {
                // Nothing survived in it; the fresh segment below starts at the same sequence.
                File.Delete(last.Path);
                _segments.RemoveAt(_segments.Count - 1);
            }
        }
        else
        {
            _nextSequence = _committed + 1;
        }
        if (_nextSequence <= _committed) _nextSequence = _committed + 1;
        _lastAppended = _nextSequence - 1;
        for (int i = 0; i < _segments.Count - 1; i++) _segments[i].Count = _segments[i + 1].Base - _segments[i].Base;
        _bytes = _segments.Sum(s => s.Bytes);
        // The newest frames of the earlier run: where RecoveredDeliveries looks.
        _recoveredTail = _segments.TakeLast(2).Select(seg => (seg.Path, seg.Base)).ToArray();
        // Appends always go to a fresh segment; the recovered ones are only read.
        OpenNewSegment();
        DeleteCommittedSegments();
        _readSequence = Math.Max(_committed + 1, _segments[0].Base);
        long pending = _lastAppended - _committed;
        if (pending > 0) LogReplaying(pending, _committed, _dir);
    }

    /// <summary>Counts the valid records of a segment; returns where the valid data ends and why it stops early.</summary>
    private static (long Count, long ValidBytes, string? Reason) Scan(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        long pos = 0, count = 0;
        var header = new byte[HeaderBytes];
        byte[] body = new byte[4096];
        while (true)
        {
            if (!ReadRecord(fs, header, ref body, out int length, out string? stop)) return (count, pos, stop);
            pos += HeaderBytes + length;
            count++;
        }
    }

    /// <summary>Reads the next whole, CRC-checked record of a segment into <paramref name="body"/> (grown as
    /// needed). False at the end of the data: <paramref name="stop"/> is null at a clean end, else why the
    /// data stops there (a torn or corrupt record).</summary>
    private static bool ReadRecord(FileStream fs, byte[] header, ref byte[] body, out int length, out string? stop)
    {
        length = 0;
        stop = null;
        int n = fs.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false);
        if (n == 0) return false;
        if (n < HeaderBytes)
        {
            stop = "record header cut short";
            return false;
        }
        length = BinaryPrimitives.ReadInt32LittleEndian(header);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        if (length <= 0 || length > MaxBodyBytes)
        {
            stop = $"impossible record length {length}";
            return false;
        }
        if (body.Length < length) body = new byte[Math.Max(length, body.Length * 2)];
        if (fs.ReadAtLeast(body.AsSpan(0, length), length, throwOnEndOfStream: false) < length)
        {
            stop = "record body cut short";
            return false;
        }
        if (Crc32C.Compute(body.AsSpan(0, length)) != crc)
        {
            stop = "CRC mismatch";
            return false;
        }
        return true;
    }

    /// <summary>
    /// The newest frames of the earlier run from <paramref name="source"/> that carry a delivery id (at
    /// most <paramref name="max"/>, oldest first), read from the last two segments found at open. The
    /// MQTT source matches what the broker delivers again after a restart against them: those frames'
    /// acknowledgements may not have left before the process ended. Segments deleted since are skipped.
    /// </summary>
    public IReadOnlyList<LoggedFrame> RecoveredDeliveries(string source, int max)
    {
        var found = new Queue<LoggedFrame>();
        foreach (var (path, first) in _recoveredTail)
        {
            try
            {
                using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
                var header = new byte[HeaderBytes];
                var body = new byte[4096];
                for (long sequence = first; ReadRecord(fs, header, ref body, out int length, out _); sequence++)
                {
                    var span = body.AsSpan(0, length);
                    if (span[0] != RecordVersionWithDelivery) continue;
                    var frame = Decode(span);
                    if (!string.Equals(frame.Source, source, StringComparison.Ordinal)) continue;
                    found.Enqueue(new LoggedFrame(sequence, frame));
                    if (found.Count > max) found.Dequeue();
                }
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // Committed and deleted since the journal opened: nothing in it can still be unacknowledged.
            }
        }
        return found.ToArray();
    }

    private long ReadCommitted()
    {
        var path = System.IO.Path.Combine(_dir, CommittedFile);
        if (!File.Exists(path)) return -1;
        var text = File.ReadAllText(path).Trim();
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)) return v;
        LogBadCommitFile(path);
        return -1; // replay everything still on disk: duplicates are harmless, loss is not
    }

    // ---------------------------------------------------------------- append

    public long Append(RawFrame frame)
    {
        var source = Encoding.UTF8.GetBytes(frame.Source);
        int topicBytes = Encoding.UTF8.GetByteCount(frame.Topic);
        if (source.Length > 255) throw new ArgumentException("source name too long", nameof(frame));
        if (topicBytes > ushort.MaxValue) throw new ArgumentException("topic too long", nameof(frame));
        bool delivery = frame.DeliveryId is > 0 and <= ushort.MaxValue;
        int bodyLength = 1 + 1 + 1 + 1 + 8 + 4 + (delivery ? 2 : 0) + source.Length + 2 + topicBytes + frame.Payload.Length;
        if (bodyLength > MaxBodyBytes) throw new ArgumentException("frame too large for the journal", nameof(frame));
        var buffer = ArrayPool<byte>.Shared.Rent(HeaderBytes + bodyLength);
        try
        {
            var body = buffer.AsSpan(HeaderBytes, bodyLength);
            int p = 0;
            body[p++] = delivery ? RecordVersionWithDelivery : RecordVersion;
            body[p++] = (byte)Math.Clamp(frame.Qos, 0, 2);
            body[p++] = 0;
            body[p++] = (byte)source.Length;
            BinaryPrimitives.WriteInt64LittleEndian(body[p..], frame.ReceivedAtNs); p += 8;
            BinaryPrimitives.WriteInt32LittleEndian(body[p..], frame.OriginalLength); p += 4;
            if (delivery)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(body[p..], (ushort)frame.DeliveryId);
                p += 2;
            }
            source.CopyTo(body[p..]); p += source.Length;
            BinaryPrimitives.WriteUInt16LittleEndian(body[p..], (ushort)topicBytes); p += 2;
            p += Encoding.UTF8.GetBytes(frame.Topic, body[p..]);
            frame.Payload.CopyTo(body[p..]);
            BinaryPrimitives.WriteInt32LittleEndian(buffer, bodyLength);
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(4), Crc32C.Compute(body));
            long sequence;
            int recordBytes = HeaderBytes + bodyLength;
            lock (_appendLock)
            {
                if (_completed) throw new JournalClosedException();
                if (_current.Bytes >= _options.SegmentBytes) RollSegment();
                // One pwrite(2) at the segment's end: in the page cache when it returns. A failed sync
                // below leaves the record uncounted; the next append overwrites it.
                RandomAccess.Write(_writer, buffer.AsSpan(0, recordBytes), _current.Bytes);
                if (_options.Fsync == FsyncPolicy.Always)
                {
                    _sync(_writer);
                    if (_directoryDirty)
                    {
                        SegmentSync.SyncDirectory(_dir);
                        _directoryDirty = false;
                    }
                }
                sequence = _nextSequence++;
                _current.Bytes += recordBytes;
                _current.Count++;
                Interlocked.Add(ref _bytes, recordBytes);
                // Always: durable before it is visible as appended, so a waiter that sees it appended sees it durable.
                if (_options.Fsync == FsyncPolicy.Always) Volatile.Write(ref _durable, sequence);
                Volatile.Write(ref _lastAppended, sequence);
                if (_options.Fsync == FsyncPolicy.Group) AddToGroup(recordBytes);
            }
            if (IsFull) MarkFull();
            SignalData();
            return sequence;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void OpenNewSegment()
    {
        var path = System.IO.Path.Combine(_dir, _nextSequence.ToString("D20", CultureInfo.InvariantCulture) + SegmentExtension);
        // A bare handle, written with pwrite at an offset the journal keeps: the sync loop can flush
        // it while appenders write, which a FileStream does not allow.
        _writer = File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.Read | FileShare.Delete);
        _current = new Segment(_nextSequence, path);
        _directoryDirty = true;
        lock (_segmentsLock) _segments.Add(_current);
    }

    private void RollSegment()
    {
        // Group and Interval: the sync loop flushes the old segment (then closes it) before any frame
        // after it counts as durable; the appender does not wait for the disk. Always: already synced.
        if (_options.Fsync is FsyncPolicy.Group or FsyncPolicy.Interval) _rolled.Add(_writer);
        else _writer.Dispose();
        OpenNewSegment();
    }

    // ---------------------------------------------------------------- read

    public async ValueTask<LoggedFrame?> ReadAsync(CancellationToken ct)
    {
        while (true)
        {
            if (_readSequence <= Volatile.Read(ref _lastAppended))
            {
                var frame = ReadNext();
                if (frame is not null) return frame;
                continue; // a corrupt segment was skipped
            }
            Task wait;
            lock (_signalLock)
            {
                if (_readSequence <= Volatile.Read(ref _lastAppended)) continue;
                if (_completed) return null;
                _dataWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _dataWaiter.Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    private LoggedFrame? ReadNext()
    {
        // The open segment's capacity is unbounded (long.MaxValue): compare with the capacity, not
        // with Base + capacity, which overflows past the first segment and re-opened the file (and
        // skipped from its start) for every frame.
        if (_readSegment is null || _readSequence - _readSegment.Base >= SegmentCapacity(_readSegment))
            OpenReadSegment();
        var fs = _readStream!;
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (fs.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
            return SkipCorrupt("record header missing");
        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (length <= 0 || length > MaxBodyBytes) return SkipCorrupt($"impossible record length {length}");
        if (_readBuffer.Length < length) _readBuffer = new byte[Math.Max(length, _readBuffer.Length * 2)];
        var body = _readBuffer.AsSpan(0, length);
        if (fs.ReadAtLeast(body, length, throwOnEndOfStream: false) < length) return SkipCorrupt("record body missing");
        if (Crc32C.Compute(body) != crc) return SkipCorrupt("CRC mismatch");
        var frame = Decode(body);
        return new LoggedFrame(_readSequence++, frame);
    }

    private RawFrame Decode(ReadOnlySpan<byte> body)
    {
        int p = 0;
        byte version = body[p++];
        if (version is not (RecordVersion or RecordVersionWithDelivery))
            throw new InvalidDataException($"journal record version {version} is not supported");
        int qos = body[p++];
        p++;
        int sourceLength = body[p++];
        long received = BinaryPrimitives.ReadInt64LittleEndian(body[p..]); p += 8;
        int original = BinaryPrimitives.ReadInt32LittleEndian(body[p..]); p += 4;
        int deliveryId = 0;
        if (version == RecordVersionWithDelivery)
        {
            deliveryId = BinaryPrimitives.ReadUInt16LittleEndian(body[p..]);
            p += 2;
        }
        // Sources and topics repeat frame after frame: pooled, they cost no string each.
        var source = _names.Get(body.Slice(p, sourceLength)); p += sourceLength;
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(body[p..]); p += 2;
        var topic = _names.Get(body.Slice(p, topicLength)); p += topicLength;
        var payload = body[p..].ToArray();
        return new RawFrame(source, topic, payload, received, qos, original) { DeliveryId = deliveryId };
    }

    /// <summary>How many records a segment holds: up to the next segment's base; the open one is unbounded.
    /// A segment no longer in the list was committed and deleted while the reader stood at its end
    /// (it had read its last record): it holds what it held when it was closed.</summary>
    private long SegmentCapacity(Segment s)
    {
        lock (_segmentsLock)
        {
            int i = _segments.IndexOf(s);
            if (i < 0) return s.Count;
            return i < _segments.Count - 1 ? _segments[i + 1].Base - s.Base : long.MaxValue;
        }
    }

    private void OpenReadSegment()
    {
        Segment? target;
        lock (_segmentsLock) target = _segments.LastOrDefault(s => s.Base <= _readSequence);
        if (target is null) throw new InvalidOperationException($"journal sequence {_readSequence} is in no segment");
        _readStream?.Dispose();
        _readStream = new FileStream(target.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        _readSegment = target;
        // Position at _readSequence by skipping the records before it (only after start-up or a skip).
        Span<byte> header = stackalloc byte[HeaderBytes];
        for (long s = target.Base; s < _readSequence; s++)
        {
            if (_readStream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes) break;
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length <= 0 || length > MaxBodyBytes) break;
            _readStream.Seek(length, SeekOrigin.Current);
        }
    }

    /// <summary>A damaged closed segment (disk fault): say how many frames are lost and go on with the next.</summary>
    private LoggedFrame? SkipCorrupt(string reason)
    {
        var seg = _readSegment!;
        long end = SegmentCapacity(seg);
        if (end == long.MaxValue)
            throw new InvalidDataException($"the open journal segment {seg.Path} is unreadable at sequence {_readSequence}: {reason}");
        long next = seg.Base + end;
        LogCorruptSegment(seg.Path, reason, next - _readSequence);
        _readSequence = next;
        _readSegment = null;
        return null;
    }

    // ---------------------------------------------------------------- commit

    public void Commit(long sequence)
    {
        if (sequence <= Interlocked.Read(ref _committed)) return;
        Interlocked.Exchange(ref _committed, sequence);
        PersistCommit();
        DeleteCommittedSegments();
        if (Interlocked.Read(ref _bytes) < _options.MaxBytes * 0.9) _room.TrySetResult();
    }

    private void PersistCommit()
    {
        long committed = Interlocked.Read(ref _committed);
        if (committed == _persistedCommit) return;
        var tmp = System.IO.Path.Combine(_dir, CommittedFile + ".tmp");
        File.WriteAllText(tmp, committed.ToString(CultureInfo.InvariantCulture));
        File.Move(tmp, System.IO.Path.Combine(_dir, CommittedFile), overwrite: true);
        _persistedCommit = committed;
    }

    private void DeleteCommittedSegments()
    {
        long committed = Interlocked.Read(ref _committed);
        List<Segment> doomed = [];
        lock (_segmentsLock)
        {
            // A segment goes when the next one starts at or below committed + 1; the open one never.
            while (_segments.Count > 1 && _segments[1].Base <= committed + 1 && _segments[0] != _current)
            {
                doomed.Add(_segments[0]);
                _segments.RemoveAt(0);
            }
        }
        foreach (var s in doomed)
        {
            try
            {
                File.Delete(s.Path);
                Interlocked.Add(ref _bytes, -s.Bytes);
            }
            catch (IOException e) { LogDeleteFailed(s.Path, e.Message); }
        }
    }

    // ---------------------------------------------------------------- signals

    private void SignalData()
    {
        TaskCompletionSource? waiter;
        lock (_signalLock)
        {
            waiter = _dataWaiter;
            _dataWaiter = null;
        }
        waiter?.TrySetResult();
    }

    private void MarkFull()
    {
        if (_room.Task.IsCompleted) Interlocked.Exchange(ref _room, NewRoomSignal(done: false));
        if (Interlocked.Read(ref _bytes) < _options.MaxBytes * 0.9) _room.TrySetResult(); // raced with a commit
    }

    public Task WaitForRoomAsync(CancellationToken ct) => _room.Task.WaitAsync(ct);

    private static TaskCompletionSource NewRoomSignal(bool done)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (done) tcs.SetResult();
        return tcs;
    }

    /// <summary>No more appends. Group and Interval: returns after the sync loop's closing sync, which
    /// releases every durability waiter (see <see cref="WaitDurableAsync"/>).</summary>
    public void Complete()
    {
        lock (_appendLock)
        {
            if (_completed) return;
            _completed = true;
            Monitor.PulseAll(_appendLock); // wakes the sync loop for its closing sync
        }
        SignalData();
        if (_syncThread is not null && Thread.CurrentThread != _syncThread) _syncThread.Join();
    }

    public void Dispose()
    {
        Complete();
        lock (_appendLock)
        {
            foreach (var h in _rolled) h.Dispose();
            _rolled.Clear();
            _writer.Dispose();
        }
        PersistCommit();
        _readStream?.Dispose();
        // An empty segment left by this run carries nothing: remove it.
        if (_current.Count == 0)
        {
            try { File.Delete(_current.Path); }
            catch (IOException e) { LogDeleteFailed(_current.Path, e.Message); }
        }
        // Released last; the file stays (deleting it would let two processes lock different files).
        _lock.Dispose();
    }

    // ---------------------------------------------------------------- durability

    /// <summary>Highest sequence that is durable as the policy promises: Always and Group and Interval,
    /// its fdatasync has returned; None, every appended frame (the page cache is that policy's promise).</summary>
    public long DurableSequence => _options.Fsync == FsyncPolicy.None ? Volatile.Read(ref _lastAppended) : Volatile.Read(ref _durable);

    /// <summary>
    /// Completes once every frame up to <paramref name="sequence"/> is durable (<see cref="DurableSequence"/>):
    /// None and Always, at once for an appended frame; Group, after its group's sync; Interval, after the next
    /// interval's sync. All waiters of a group share one task: no allocation per call unless
    /// <paramref name="ct"/> can be cancelled. On a closed journal: completes for a frame the closing sync
    /// covered; throws <see cref="JournalClosedException"/> for one it did not (the closing sync failed, or
    /// the sequence was never appended). A sequence not yet appended on an open journal is an
    /// <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public ValueTask WaitDurableAsync(long sequence, CancellationToken ct)
    {
        if (sequence <= DurableSequence) return ValueTask.CompletedTask;
        Task wait;
        lock (_durableLock)
        {
            long last = Volatile.Read(ref _lastAppended);
            if (sequence <= Volatile.Read(ref _durable)) return ValueTask.CompletedTask; // read after last: see Append
            if (sequence > last || _closedUndurable)
            {
                if (Volatile.Read(ref _completed) || _closedUndurable)
                    return ValueTask.FromException(new JournalClosedException($"the journal closed before frame {sequence} was durable"));
                throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"frame {sequence} was not appended (last appended {Volatile.Read(ref _lastAppended)})");
            }
            // The group being synced covers it, or else the open group: it closes with a target at or
            // above today's last appended sequence (the loop reads that under _durableLock too).
            wait = sequence <= _syncingTarget ? _syncingSignal.Task : _openSignal.Task;
        }
        return ct.CanBeCanceled ? new ValueTask(wait.WaitAsync(ct)) : new ValueTask(wait);
    }

    /// <summary>Group: counts the frame into the open group; wakes the sync loop when the group opens
    /// and when it reaches its frame or byte bound (twice a group, not once a frame). Under _appendLock.</summary>
    private void AddToGroup(int recordBytes)
    {
        long before = _groupBytes;
        _groupFrames++;
        _groupBytes += recordBytes;
        if (_groupFrames == 1)
        {
            _groupStart = Stopwatch.GetTimestamp();
            Monitor.Pulse(_appendLock);
        }
        else if (_groupFrames == _options.GroupCommitFrames
                 || (_groupBytes >= _options.GroupCommitBytes && before < _options.GroupCommitBytes))
        {
            Monitor.Pulse(_appendLock);
        }
    }

    /// <summary>What one sync covers: the rolled segments, the open one, the folder if a segment is new.</summary>
    private sealed record SyncGroup(long Target, int Frames, List<SafeFileHandle>? Rolled, SafeFileHandle Current, bool Directory, bool Final);

    /// <summary>
    /// The sync loop (Group and Interval), on a thread of its own because fdatasync blocks it: wait for
    /// a group to close, hand it to the disk outside the append lock (appends go on into the next
    /// group), then publish its last sequence as durable and complete its waiters. A failed sync is
    /// retried (the group's waiters wait meanwhile) with a capped backoff; at Complete the loop syncs
    /// what is left and ends.
    /// </summary>
    private void SyncLoop()
    {
        try { RunSyncLoop(); }
        catch (Exception e)
        {
            LogSyncLoopStopped(e);
            FailWaiters(e);
        }
    }

    private void RunSyncLoop()
    {
        int failures = 0;
        while (true)
        {
            SyncGroup group;
            lock (_appendLock)
            {
                if (_options.Fsync == FsyncPolicy.Group) WaitForGroupLocked();
                else WaitForIntervalLocked();
                group = CloseGroupLocked();
            }
            while (true)
            {
                var error = TrySync(group);
                if (error is null)
                {
                    if (failures > 0) LogSyncRecovered(failures, group.Target);
                    failures = 0;
                    break;
                }
                failures++;
                if (group.Final || (Volatile.Read(ref _completed) && failures > 1))
                {
                    LogClosingSyncFailed(Volatile.Read(ref _durable), error.Message);
                    FailWaiters(error);
                    return;
                }
                if (_options.Fsync == FsyncPolicy.Interval) LogFsyncFailed(error.Message);
                else LogSyncFailed(Volatile.Read(ref _durable), failures, error.Message);
                lock (_appendLock)
                    if (!_completed) Monitor.Wait(_appendLock, TimeSpan.FromMilliseconds(Math.Min(1000, 10 << Math.Min(failures, 7))));
            }
            if (group.Rolled is not null) foreach (var h in group.Rolled) h.Dispose();
            Publish(group.Target, group.Final);
            if (group.Final) return;
        }
    }

    /// <summary>Group: until the open group has a frame and reaches its frame bound, byte bound or delay; or Complete.</summary>
    private void WaitForGroupLocked()
    {
        long delayTicks = _options.GroupCommitMaxDelayMs * Stopwatch.Frequency / 1000;
        while (!_completed)
        {
            if (_groupFrames == 0)
            {
                Monitor.Wait(_appendLock);
                continue;
            }
            if (_groupFrames >= _options.GroupCommitFrames || _groupBytes >= _options.GroupCommitBytes) return;
            long remaining = _groupStart + delayTicks - Stopwatch.GetTimestamp();
            if (remaining <= 0) return;
            Monitor.Wait(_appendLock, TimeSpan.FromTicks(Math.Max(1, remaining * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
        }
    }

    /// <summary>Interval: until an interval has passed with something to sync; or Complete.</summary>
    private void WaitForIntervalLocked()
    {
        long period = Math.Max(10, _options.FsyncIntervalMs) * Stopwatch.Frequency / 1000;
        long due = Stopwatch.GetTimestamp() + period;
        while (!_completed)
        {
            long remaining = due - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                if (Volatile.Read(ref _lastAppended) > _closedTarget || _rolled.Count > 0) return;
                due += period;
                continue;
            }
            Monitor.Wait(_appendLock, TimeSpan.FromTicks(Math.Max(1, remaining * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
        }
    }

    /// <summary>Closes the open group (under _appendLock): what it covers, and its waiters become the syncing ones.</summary>
    private SyncGroup CloseGroupLocked()
    {
        List<SafeFileHandle>? rolled = _rolled.Count > 0 ? [.. _rolled] : null;
        _rolled.Clear();
        var group = new SyncGroup(Volatile.Read(ref _lastAppended), _groupFrames, rolled, _writer, _directoryDirty, _completed);
        _directoryDirty = false;
        _groupFrames = 0;
        _groupBytes = 0;
        _closedTarget = group.Target;
        lock (_durableLock)
        {
            _syncingTarget = group.Target;
            _syncingSignal = _openSignal;
            _openSignal = NewRoomSignal(done: false);
        }
        return group;
    }

    private Exception? TrySync(SyncGroup group)
    {
        if (group.Target <= Volatile.Read(ref _durable) && group.Rolled is null && !group.Directory) return null; // nothing new
        long started = Stopwatch.GetTimestamp();
        try
        {
            // Older segments first: a frame counts as durable only with every frame before it.
            if (group.Rolled is not null) foreach (var h in group.Rolled) _sync(h);
            _sync(group.Current);
            if (group.Directory) SegmentSync.SyncDirectory(_dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e;
        }
        var took = Stopwatch.GetElapsedTime(started);
        if (took.TotalMilliseconds >= 1000) LogSlowSync((long)took.TotalMilliseconds, group.Frames, group.Target);
        return null;
    }

    private void Publish(long target, bool final)
    {
        TaskCompletionSource done;
        TaskCompletionSource? open = null;
        lock (_durableLock)
        {
            Volatile.Write(ref _durable, target);
            done = _syncingSignal;
            if (final) open = _openSignal; // nothing can join it after the closing group
        }
        done.TrySetResult();
        open?.TrySetResult();
    }

    private void FailWaiters(Exception error)
    {
        TaskCompletionSource syncing, open;
        lock (_durableLock)
        {
            _closedUndurable = true;
            syncing = _syncingSignal;
            open = _openSignal;
        }
        var closed = new JournalClosedException($"the journal closed but its last sync failed; frames after {Volatile.Read(ref _durable)} are not durable: {error.Message}", error);
        syncing.TrySetException(closed);
        open.TrySetException(closed);
    }

    [LoggerMessage(EventId = 1350, Level = LogLevel.Information, Message = "Journal {Folder}: Fsync {Policy} (groups of up to {GroupFrames} frames or {GroupBytes} bytes or {GroupDelayMs} ms; interval {IntervalMs} ms)")]
    private partial void LogDurability(string folder, FsyncPolicy policy, int groupFrames, long groupBytes, int groupDelayMs, int intervalMs);

    [LoggerMessage(EventId = 1351, Level = LogLevel.Error, Message = "Journal group sync failed ({Failures} in a row): frames after sequence {Durable} are not durable and not acknowledged; retrying: {Error}")]
    private partial void LogSyncFailed(long durable, int failures, string error);

    [LoggerMessage(EventId = 1352, Level = LogLevel.Information, Message = "Journal sync works again after {Failures} failures; durable up to sequence {Durable}")]
    private partial void LogSyncRecovered(int failures, long durable);

    [LoggerMessage(EventId = 1353, Level = LogLevel.Error, Message = "Journal closing sync failed: frames after sequence {Durable} are on disk but not known durable, and their waiters were released with JournalClosedException: {Error}")]
    private partial void LogClosingSyncFailed(long durable, string error);

    [LoggerMessage(EventId = 1354, Level = LogLevel.Warning, Message = "Journal sync took {Milliseconds} ms for a group of {Frames} frames (up to sequence {Target}): acknowledgements wait for the disk")]
    private partial void LogSlowSync(long milliseconds, int frames, long target);

    [LoggerMessage(EventId = 1355, Level = LogLevel.Critical, Message = "Journal sync loop stopped; no frame will become durable and every waiter was released with JournalClosedException")]
    private partial void LogSyncLoopStopped(Exception error);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Journal segment {Path} ended in a torn record ({Reason}): cut {Bytes} bytes at offset {Offset}; every complete record before it is kept")]
    private partial void LogTornRecord(string path, long offset, long bytes, string reason);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "Journal: {Pending} frames after sequence {Committed} were not yet stored; replaying them from {Folder}")]
    private partial void LogReplaying(long pending, long committed, string folder);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Error, Message = "Journal segment {Path} is damaged ({Reason}); {Lost} frames in it cannot be read and are skipped")]
    private partial void LogCorruptSegment(string path, string reason, long lost);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Journal commit file {Path} is unreadable; replaying everything still on disk")]
    private partial void LogBadCommitFile(string path);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Error, Message = "Cannot delete committed journal segment {Path}: {Error}")]
    private partial void LogDeleteFailed(string path, string error);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Error, Message = "Journal fsync failed: {Error}")]
    private partial void LogFsyncFailed(string error);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Warning, Message = "Journal lock {Path} is held, but the note naming this process could not be written: {Error}")]
    private partial void LogLockNoteFailed(string path, string error);
}

/// <summary>The journal folder is locked by another process: two instances were given one journal.</summary>
public sealed class JournalInUseException(string folder, Exception inner) : IOException(
    $"the journal folder '{folder}' is in use by another gateway process ({inner.Message}); every instance needs a journal " +
    $"folder of its own (Gateway:Journal:Path); {System.IO.Path.Combine(folder, "journal.lock")} names the process holding it", inner)
{
    public string Folder { get; } = folder;
}
