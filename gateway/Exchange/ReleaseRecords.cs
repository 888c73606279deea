using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange;

/// <summary>What was released to one partner for one window: its feed sequence and the payload that was signed.</summary>
public sealed record ReleaseRecord(string Partner, long Sequence, DateTimeOffset WindowStart, JsonObject Payload);

/// <summary>
/// The durable record of every release, kept apart from the release files (one JSON line per
/// release in an append-only file, fsync'd before the release file is written).
///
/// <para><b>Rule.</b> Whether a window is already released to a partner is decided from this record
/// (and the ledgers), never from the presence of a release file. A release whose file has gone
/// (deleted, older backup restored) is restored from its record: same sequence, same payload,
/// signed again. A torn last line (a crash while appending) is ignored at start; any other
/// unreadable line stops the start with <see cref="InvalidDataException"/>, because releases could
/// otherwise be made twice.</para>
/// </summary>
public sealed class ReleaseRecords
{
    private readonly object _lock = new();
    private readonly bool _flushToDisk;
    private readonly Dictionary<(string Partner, long Unix), ReleaseRecord> _byWindow = new();
    private readonly Dictionary<string, long> _lastSequence = new(StringComparer.Ordinal);

    public ReleaseRecords(string path, bool flushToDisk = true)
    {
        FilePath = Path.GetFullPath(path);
        _flushToDisk = flushToDisk;
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        if (!File.Exists(FilePath)) return;
        var lines = File.ReadAllLines(FilePath);
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            ReleaseRecord? r = null;
            try { r = Parse(lines[i]); }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
            {
                if (i == lines.Length - 1) { DropTornTail(); break; }   // torn last append: the release was never written
                throw new InvalidDataException($"release record file {FilePath} line {i + 1} is unreadable ({e.Message}); restore it from a backup", e);
            }
            if (r is null)
            {
                if (i == lines.Length - 1) { DropTornTail(); break; }
                throw new InvalidDataException($"release record file {FilePath} line {i + 1} is incomplete; restore it from a backup");
            }
            Remember(r);
        }
    }

    public string FilePath { get; }

    public bool TryGet(string partner, DateTimeOffset windowStart, out ReleaseRecord? record)
    {
        lock (_lock) return _byWindow.TryGetValue((partner, windowStart.ToUnixTimeSeconds()), out record);
    }

    /// <summary>The highest sequence recorded for <paramref name="partner"/>, 0 if none.</summary>
    public long LastSequence(string partner)
    {
        lock (_lock) return _lastSequence.GetValueOrDefault(partner);
    }

    public IReadOnlyList<ReleaseRecord> For(string partner)
    {
        lock (_lock) return _byWindow.Values.Where(r => r.Partner == partner).OrderBy(r => r.Sequence).ToList();
    }

    /// <summary>Appends a record and syncs it to disk; throws <see cref="ReleaseConflictException"/> if the window is recorded already.</summary>
    public void Append(ReleaseRecord record)
    {
        lock (_lock)
        {
            if (_byWindow.ContainsKey((record.Partner, record.WindowStart.ToUnixTimeSeconds())))
                throw new ReleaseConflictException($"window {record.WindowStart:O} for {record.Partner} is already recorded");
            var line = new JsonObject
            {
                ["partner"] = record.Partner, ["sequence"] = record.Sequence,
                ["windowStart"] = record.WindowStart.ToUnixTimeSeconds(), ["payload"] = record.Payload.DeepClone(),
            }.ToJsonString() + "\n";
            bool created = !File.Exists(FilePath);
            using (var fs = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read))
            {
                fs.Write(Encoding.UTF8.GetBytes(line));
                fs.Flush(flushToDisk: _flushToDisk);
            }
            if (created && _flushToDisk) FileSync.Directory(Path.GetDirectoryName(FilePath)!);
            Remember(record);
        }
    }

    /// <summary>Cuts a torn last line off the file, so the next append starts on a line of its own.</summary>
    private void DropTornTail()
    {
        var bytes = File.ReadAllBytes(FilePath);
        int end = Array.LastIndexOf(bytes, (byte)'\n', bytes.Length - 1 - (bytes.Length > 0 && bytes[^1] == (byte)'\n' ? 1 : 0)) + 1;
        using var fs = new FileStream(FilePath, FileMode.Open, FileAccess.Write, FileShare.None);
        fs.SetLength(end);
        fs.Flush(flushToDisk: _flushToDisk);
    }

    private void Remember(ReleaseRecord r)
    {
        _byWindow[(r.Partner, r.WindowStart.ToUnixTimeSeconds())] = r;
        _lastSequence[r.Partner] = Math.Max(_lastSequence.GetValueOrDefault(r.Partner), r.Sequence);
    }

    private static ReleaseRecord? Parse(string line)
    {
        if (JsonNode.Parse(line) is not JsonObject o) return null;
        var partner = o["partner"]?.GetValue<string>();
        var payload = o["payload"] as JsonObject;
        if (partner is null || payload is null || o["sequence"] is null || o["windowStart"] is null) return null;
        return new ReleaseRecord(partner, o["sequence"]!.GetValue<long>(),
            DateTimeOffset.FromUnixTimeSeconds(o["windowStart"]!.GetValue<long>()), (JsonObject)payload.DeepClone());
    }
}
