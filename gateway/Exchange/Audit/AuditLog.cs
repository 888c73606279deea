using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;

namespace CityGateway.Exchange.Audit;

/// <summary>An audit log that cannot be opened for appending, or an append that failed.</summary>
public sealed class AuditLogException(string message, AuditVerification? verification = null, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>Set when the log was refused because it does not verify.</summary>
    public AuditVerification? Verification { get; } = verification;
}

/// <summary>One appended entry.</summary>
public sealed record AuditEntry(long Seq, string Time, string Kind, JsonObject Data, string Prev, string Hash)
{
    public AuditHead Head => new(Seq, Hash);
}

/// <summary>
/// The exchange's tamper-evident audit log: an append-only JSON-lines file in which every entry
/// carries the hash of the one before it.
/// </summary>
/// <remarks>
/// <para>Each line, in exactly this form (no spaces, "data" in RFC 8785 canonical form, strings
/// escaped as RFC 8785 does), followed by <c>\n</c>:</para>
/// <code>{"seq":1,"time":"2025-06-01T08:00:00.000Z","kind":"release","data":{...},"prev":"&lt;64 hex&gt;","hash":"&lt;64 hex&gt;"}</code>
/// <list type="bullet">
/// <item><c>seq</c> counts from 1 and equals the line number.</item>
/// <item><c>time</c> is UTC with milliseconds.</item>
/// <item><c>prev</c> is the previous entry's <c>hash</c>; for the first entry 64 zeros (<see cref="GenesisHash"/>).</item>
/// <item><c>hash</c> is lower-case hex SHA-256 of <see cref="CanonicalJson"/> of the entry without
/// <c>hash</c>, i.e. of <c>{"data":…,"kind":…,"prev":…,"seq":…,"time":…}</c>.</item>
/// </list>
/// <para>Verification re-reads each line, rebuilds it from its values and requires the same bytes,
/// so any changed byte is reported at its line: as bad JSON, a malformed or non-canonical entry, a
/// sequence gap, a prev mismatch or a hash mismatch. Removing whole entries from the end leaves a
/// valid shorter chain, and so does an edit followed by re-chaining every later entry; both are
/// detected only against a head written down earlier (<see cref="AuditHead"/>, <c>--anchor SEQ:HASH</c>)
/// or signed and handed to partners (<see cref="AuditCheckpoint"/>, <c>--checkpoint FILE</c>).</para>
/// <para>Appends are serialised within the process and guarded against a second writer (another
/// process or instance) by an exclusive lock on <c>PATH.lock</c>. Each line goes to the OS in one
/// write and, unless disabled, is flushed to disk (fsync) before <see cref="Append"/> returns.</para>
/// <para>Opening verifies the whole file and continues the chain after its last entry. A log that
/// does not verify is refused — nothing is appended to it, and nothing is truncated or rewritten
/// automatically, since the damaged bytes are evidence. A torn last line (a write cut short by a
/// crash) is the one damage with a safe repair: <see cref="RepairTornTail"/> (<c>Gateway exchange
/// repair-audit</c>) moves the unterminated bytes to a side file and truncates the log after its
/// last complete entry; the torn entry was never acknowledged to its caller. Any other damage needs
/// an operator: keep the file as evidence and start a new log. After a failed write the instance
/// refuses further appends; reopening it checks the file again.</para>
/// </remarks>
public sealed class AuditLog : IDisposable
{
    public static readonly string GenesisHash = new('0', 64);
    internal const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
    private const int MaxKindLength = 64;

    private readonly object _gate = new();
    private readonly FileStream _lock;
    private readonly FileStream _file;
    private readonly TimeProvider _time;
    private readonly bool _fsync;
    private long _seq;
    private string _hash;
    private bool _faulted;
    private bool _disposed;

    /// <summary>
    /// Opens (or creates) the log at <paramref name="path"/> for appending. Throws
    /// <see cref="AuditLogException"/> when another writer holds it or when it does not verify
    /// (<see cref="AuditLogException.Verification"/> says where and why).
    /// </summary>
    /// <param name="fsync">Flush each entry to disk before <see cref="Append"/> returns (default); without it only to the OS.</param>
    public AuditLog(string path, TimeProvider? time = null, bool fsync = true)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        _fsync = fsync;
        var dir = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);

        _lock = AcquireWriterLock(Path);
        try
        {
            var verification = File.Exists(Path) ? Verify(Path) : new AuditVerification(true, 0, null, AuditHead.Genesis);
            if (!verification.Ok)
            {
                var repair = verification.FirstBreak!.Problem == AuditProblem.TornLine
                    ? " Repair with: Gateway exchange repair-audit --file " + Path
                    : " Keep the file as evidence and start a new log.";
                throw new AuditLogException($"The audit log {Path} does not verify, nothing is appended to it: {verification.FirstBreak}.{repair}", verification);
            }
            _seq = verification.Head.Seq;
            _hash = verification.Head.Hash;
            // A new log is created 0600; every line goes to the OS in one write (no buffer).
            _file = new FileStream(Path, PrivateFiles.Options(FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0));
        }
        catch
        {
            _lock.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>The last entry written (seq 0 and the genesis hash while the log is empty).</summary>
    public AuditHead Head { get { lock (_gate) return new AuditHead(_seq, _hash); } }

    /// <summary>
    /// Appends an entry of <paramref name="kind"/> ("release", "pull", ...) with a copy of
    /// <paramref name="data"/>; returns it once it is written. Thread-safe.
    /// </summary>
    public AuditEntry Append(string kind, JsonObject data)
    {
        if (string.IsNullOrEmpty(kind) || kind.Length > MaxKindLength || kind.Any(char.IsControl))
            throw new ArgumentException($"An audit entry kind is 1 to {MaxKindLength} printable characters.", nameof(kind));
        ArgumentNullException.ThrowIfNull(data);
        // Canonical before anything is written: data that has no canonical form is refused here.
        var copy = (JsonObject)data.DeepClone();
        var canonicalData = CanonicalJson.Serialize(copy);

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_faulted) throw new AuditLogException($"An earlier write to the audit log {Path} failed; reopen the log to check it before appending.");
            long seq = _seq + 1;
            var time = _time.GetUtcNow().UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);
            var hash = HashOf(seq, time, kind, canonicalData, _hash);
            var line = FormatLine(seq, time, kind, canonicalData, _hash, hash);
            try
            {
                _file.Write(line);
                _file.Flush(flushToDisk: _fsync);
            }
            catch (Exception e)
            {
                _faulted = true;
                throw new AuditLogException($"Writing to the audit log {Path} failed: {e.Message}", null, e);
            }
            var entry = new AuditEntry(seq, time, kind, copy, _hash, hash);
            _seq = seq;
            _hash = hash;
            return entry;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _file.Dispose();
            _lock.Dispose();
        }
    }

    /// <summary>
    /// Checks every line of the log at <paramref name="path"/>; stops at the first that breaks
    /// the chain. With <paramref name="anchor"/> (a head noted earlier) also checks that the entry
    /// with that sequence number is still there with that hash. Reading a log while a writer
    /// appends to it may catch a line half written and report it as <see cref="AuditProblem.TornLine"/>.
    /// </summary>
    public static AuditVerification Verify(string path, AuditHead? anchor = null) => Walk(path, anchor, null);

    /// <summary>As <see cref="Verify(string, AuditHead?)"/>, for a log read from a stream (a copy, a backup, a download).</summary>
    public static AuditVerification Verify(Stream log, AuditHead? anchor = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        return Walk(log, anchor, null);
    }

    /// <summary>As <see cref="Verify(string, AuditHead?)"/>, calling <paramref name="onEntry"/> with the seq and hash of every entry that verifies, in order.</summary>
    internal static AuditVerification Verify(string path, Action<long, string> onEntry) =>
        Walk(path, null, (_, root) => onEntry(root.GetProperty("seq").GetInt64(), root.GetProperty("hash").GetString()!));

    /// <summary>As <see cref="Verify(string, Action{long, string})"/>, for a log read from a stream.</summary>
    internal static AuditVerification Verify(Stream log, Action<long, string> onEntry) =>
        Walk(log, null, (_, root) => onEntry(root.GetProperty("seq").GetInt64(), root.GetProperty("hash").GetString()!));

    /// <summary>
    /// Per partner (<c>data.partner</c>): releases, rows released (<c>data.rows</c>), ε spent
    /// (<c>data.epsilon</c>), pulls and first/last entry time. Only entries that verify are counted:
    /// with a broken chain the summary covers the entries before the break and says so.
    /// </summary>
    public static TransparencySummary Summarise(string path)
    {
        var builder = new TransparencySummary.Builder();
        var verification = Walk(path, null, builder.Add);
        return builder.Build(verification);
    }

    /// <summary>
    /// Repairs a log whose only damage is a torn last line: copies the unterminated bytes to
    /// <c>PATH.torn-&lt;UTC time&gt;</c> and truncates the log after its last complete entry.
    /// Any other damage is left alone and reported. Fails while a writer has the log open.
    /// </summary>
    public static AuditRepair RepairTornTail(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        using var writerLock = AcquireWriterLock(full);
        var verification = Verify(full);
        if (verification.Ok) return new AuditRepair(false, null, 0, verification, "the audit log is intact; nothing to repair");
        var broken = verification.FirstBreak!;
        if (broken.Problem != AuditProblem.TornLine)
            return new AuditRepair(false, null, 0, verification, $"not a torn last line, left as it is: {broken}");

        using var file = new FileStream(full, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        long length = file.Length;
        var torn = new byte[length - broken.Offset];
        file.Position = broken.Offset;
        file.ReadExactly(torn);
        var side = full + ".torn-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
        using (var sideFile = new FileStream(side, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            sideFile.Write(torn);
            sideFile.Flush(flushToDisk: true);
        }
        file.SetLength(broken.Offset);
        file.Flush(flushToDisk: true);
        var after = Verify(full);
        return new AuditRepair(after.Ok, side, torn.Length, after,
            $"moved {torn.Length} bytes of the torn line {broken.Line} to {side}; the log now ends at {after.Head}");
    }

    private static FileStream AcquireWriterLock(string path)
    {
        try
        {
            // FileShare.None takes an exclusive lock (flock on Unix) held as long as the stream is open.
            return new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new AuditLogException($"The audit log {path} is open for writing elsewhere ({path}.lock is held): {e.Message}", null, e);
        }
    }

    internal static bool IsHash(string? s)
    {
        if (s is null || s.Length != 64) return false;
        foreach (char c in s) if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        return true;
    }

    /// <summary>SHA-256 of the canonical entry without "hash": members in RFC 8785 order data, kind, prev, seq, time.</summary>
    private static string HashOf(long seq, string time, string kind, byte[] canonicalData, string prev)
    {
        var canonical = new MemoryStream(canonicalData.Length + 200);
        Write(canonical, "{\"data\":");
        canonical.Write(canonicalData);
        Write(canonical, ",\"kind\":");
        canonical.Write(CanonicalJson.Serialize(JsonValue.Create(kind)));
        Write(canonical, ",\"prev\":\"" + prev + "\",\"seq\":" + seq.ToString(CultureInfo.InvariantCulture) + ",\"time\":");
        canonical.Write(CanonicalJson.Serialize(JsonValue.Create(time)));
        Write(canonical, "}");
        return Convert.ToHexStringLower(SHA256.HashData(canonical.GetBuffer().AsSpan(0, (int)canonical.Length)));
    }

    /// <summary>The line as written, with its terminating "\n".</summary>
    private static byte[] FormatLine(long seq, string time, string kind, byte[] canonicalData, string prev, string hash)
    {
        var line = new MemoryStream(canonicalData.Length + 260);
        Write(line, "{\"seq\":" + seq.ToString(CultureInfo.InvariantCulture) + ",\"time\":");
        line.Write(CanonicalJson.Serialize(JsonValue.Create(time)));
        Write(line, ",\"kind\":");
        line.Write(CanonicalJson.Serialize(JsonValue.Create(kind)));
        Write(line, ",\"data\":");
        line.Write(canonicalData);
        Write(line, ",\"prev\":\"" + prev + "\",\"hash\":\"" + hash + "\"}\n");
        return line.ToArray();
    }

    private static void Write(MemoryStream stream, string ascii) => stream.Write(Encoding.ASCII.GetBytes(ascii));

    private static readonly string[] Members = ["seq", "time", "kind", "data", "prev", "hash"];

    /// <summary>Reads the log line by line, checking each; calls <paramref name="onEntry"/> for every verified entry.</summary>
    private static AuditVerification Walk(string path, AuditHead? anchor, Action<long, JsonElement>? onEntry)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new AuditVerification(false, 0, new AuditBreak(0, null, AuditProblem.Unreadable, e.Message, 0), AuditHead.Genesis);
        }
        using (stream) return Walk(stream, anchor, onEntry);
    }

    private static AuditVerification Walk(Stream stream, AuditHead? anchor, Action<long, JsonElement>? onEntry)
    {
        long entries = 0;
        var head = AuditHead.Genesis;
        AuditVerification Broken(long line, long? seq, AuditProblem problem, string detail, long offset) =>
            new(false, entries, new AuditBreak(line, seq, problem, detail, offset), head);

        long lineNo = 0, position = 0;
        using (var lines = ReadLines(stream).GetEnumerator())
        {
            while (true)
            {
                (long Offset, byte[] Bytes, bool Terminated) current;
                try
                {
                    if (!lines.MoveNext()) break;
                    current = lines.Current;
                }
                catch (IOException e)
                {
                    return Broken(lineNo + 1, null, AuditProblem.Unreadable, e.Message, position);
                }
                lineNo++;
                var (offset, bytes, terminated) = current;
                position = offset + bytes.Length + (terminated ? 1 : 0);
                if (!terminated)
                    return Broken(lineNo, null, AuditProblem.TornLine, $"the last line has no line terminator ({bytes.Length} bytes): a write was cut short or the file truncated", offset);
                if (bytes.Length == 0) return Broken(lineNo, null, AuditProblem.BadJson, "empty line", offset);

                JsonDocument doc;
                try { doc = JsonDocument.Parse(bytes); }
                catch (Exception e) when (e is JsonException or ArgumentException) { return Broken(lineNo, null, AuditProblem.BadJson, e.Message, offset); }
                using (doc)
                try
                {
                    var root = doc.RootElement;
                    if (root.ValueKind != JsonValueKind.Object) return Broken(lineNo, null, AuditProblem.MalformedEntry, "the line is not a JSON object", offset);
                    long? seqSeen = root.TryGetProperty("seq", out var seqEl) && seqEl.ValueKind == JsonValueKind.Number && seqEl.TryGetInt64(out var sv) ? sv : null;

                    var shape = CheckShape(root);
                    if (shape is not null) return Broken(lineNo, seqSeen, AuditProblem.MalformedEntry, shape, offset);
                    long seq = seqSeen!.Value;
                    var time = root.GetProperty("time").GetString()!;
                    var kind = root.GetProperty("kind").GetString()!;
                    var prev = root.GetProperty("prev").GetString()!;
                    var hash = root.GetProperty("hash").GetString()!;
                    byte[] canonicalData;
                    try { canonicalData = CanonicalJson.Serialize(root.GetProperty("data")); }
                    catch (ArgumentException e) { return Broken(lineNo, seq, AuditProblem.MalformedEntry, "data: " + e.Message, offset); }

                    var rebuilt = FormatLine(seq, time, kind, canonicalData, prev, hash);
                    if (!rebuilt.AsSpan(0, rebuilt.Length - 1).SequenceEqual(bytes))
                        return Broken(lineNo, seq, AuditProblem.NotCanonical, "the line is not byte for byte the form the gateway writes (a changed or inserted byte)", offset);
                    if (seq != head.Seq + 1)
                        return Broken(lineNo, seq, AuditProblem.SeqGap, $"expected seq {head.Seq + 1}, found {seq}", offset);
                    if (!string.Equals(prev, head.Hash, StringComparison.Ordinal))
                        return Broken(lineNo, seq, AuditProblem.PrevMismatch, $"prev is {prev}, the previous entry's hash is {head.Hash}", offset);
                    var computed = HashOf(seq, time, kind, canonicalData, prev);
                    if (!string.Equals(hash, computed, StringComparison.Ordinal))
                        return Broken(lineNo, seq, AuditProblem.HashMismatch, $"hash is {hash}, the entry hashes to {computed}", offset);
                    if (anchor is not null && anchor.Seq == seq && !string.Equals(anchor.Hash, hash, StringComparison.Ordinal))
                        return Broken(lineNo, seq, AuditProblem.AnchorMismatch, $"the anchor says seq {seq} has hash {anchor.Hash}, the log has {hash}", offset);

                    onEntry?.Invoke(lineNo, root);
                    entries++;
                    head = new AuditHead(seq, hash);
                }
                catch (InvalidOperationException e)
                {
                    // A string that System.Text.Json cannot decode (invalid UTF-8 or UTF-16 escapes).
                    return Broken(lineNo, null, AuditProblem.MalformedEntry, e.Message, offset);
                }
            }
            if (anchor is not null && anchor.Seq > head.Seq)
                return Broken(lineNo + 1, null, AuditProblem.MissingAnchor, $"the log ends at seq {head.Seq}, before the anchored seq {anchor.Seq}: entries were removed from its end", position);
        }
        return new AuditVerification(true, entries, null, head);
    }

    private static string? CheckShape(JsonElement root)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
        {
            if (Array.IndexOf(Members, p.Name) < 0) return $"unexpected member \"{p.Name}\"";
            if (!seen.Add(p.Name)) return $"member \"{p.Name}\" appears twice";
        }
        foreach (var m in Members)
            if (!seen.Contains(m)) return $"member \"{m}\" is missing";

        var seq = root.GetProperty("seq");
        if (seq.ValueKind != JsonValueKind.Number || !seq.TryGetInt64(out var s) || s < 1) return "seq is not a positive integer";
        var time = root.GetProperty("time");
        if (time.ValueKind != JsonValueKind.String || !DateTime.TryParseExact(time.GetString(), TimeFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out _))
            return "time is not a UTC time yyyy-MM-ddTHH:mm:ss.fffZ";
        var kind = root.GetProperty("kind");
        if (kind.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(kind.GetString())) return "kind is not a non-empty string";
        if (root.GetProperty("data").ValueKind != JsonValueKind.Object) return "data is not an object";
        var prev = root.GetProperty("prev");
        if (prev.ValueKind != JsonValueKind.String || !IsHash(prev.GetString())) return "prev is not 64 lower-case hex digits";
        var hash = root.GetProperty("hash");
        if (hash.ValueKind != JsonValueKind.String || !IsHash(hash.GetString())) return "hash is not 64 lower-case hex digits";
        return null;
    }

    /// <summary>The file's lines without their "\n", with the offset of each; the last may be unterminated.</summary>
    private static IEnumerable<(long Offset, byte[] Bytes, bool Terminated)> ReadLines(Stream stream)
    {
        var buffer = new byte[1 << 16];
        var pending = new MemoryStream();
        long position = 0, lineStart = 0;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            while (start < read)
            {
                int nl = Array.IndexOf(buffer, (byte)'\n', start, read - start);
                if (nl < 0)
                {
                    pending.Write(buffer, start, read - start);
                    break;
                }
                pending.Write(buffer, start, nl - start);
                yield return (lineStart, pending.ToArray(), true);
                pending.SetLength(0);
                start = nl + 1;
                lineStart = position + start;
            }
            position += read;
        }
        if (pending.Length > 0) yield return (lineStart, pending.ToArray(), false);
    }
}

/// <summary>The outcome of <see cref="AuditLog.RepairTornTail"/>.</summary>
public sealed record AuditRepair(bool Repaired, string? SavedTo, long BytesMoved, AuditVerification After, string Message);
