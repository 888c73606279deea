using System.Globalization;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange;

/// <summary>A stored, signed release: its sequence in the partner's feed, its window, its file.</summary>
public sealed record StoredRelease(string Partner, long Sequence, DateTimeOffset WindowStart, string Path)
{
    /// <summary>The envelope as it is on disk now: served and verified from the file, so a changed file is noticed.</summary>
    public byte[] Envelope => File.ReadAllBytes(Path);
}

/// <summary>
/// Releases, kept immutably: one file per release (created once with mode 0600, never overwritten,
/// then read-only 0400),
/// named by the partner's feed sequence and the window start. A window that has a release is
/// never computed again, so no fresh noise can ever be drawn for it.
/// </summary>
public sealed class ReleaseStore
{
    private readonly string _root;
    private readonly object _lock = new();
    private readonly Dictionary<string, List<StoredRelease>> _byPartner = new();

    public ReleaseStore(string root)
    {
        _root = Path.GetFullPath(root);
        PrivateFiles.CreateFolder(_root);
        foreach (var dir in Directory.EnumerateDirectories(_root))
        {
            var partner = Path.GetFileName(dir);
            var list = new List<StoredRelease>();
            foreach (var file in Directory.EnumerateFiles(dir, "*.json"))
            {
                var name = Path.GetFileNameWithoutExtension(file).Split('_');
                if (name.Length != 2 || !long.TryParse(name[0], CultureInfo.InvariantCulture, out var seq) ||
                    !long.TryParse(name[1], CultureInfo.InvariantCulture, out var unix)) continue;
                list.Add(new StoredRelease(partner, seq, DateTimeOffset.FromUnixTimeSeconds(unix), file));
            }
            _byPartner[partner] = list.OrderBy(r => r.Sequence).ToList();
        }
    }

    public string Root => _root;

    public bool HasWindow(string partner, DateTimeOffset windowStart)
    {
        lock (_lock)
            return _byPartner.TryGetValue(partner, out var list) && list.Any(r => r.WindowStart == windowStart)
                   || File.Exists(RefusedMarker(partner, windowStart));
    }

    public long NextSequence(string partner)
    {
        lock (_lock) return _byPartner.TryGetValue(partner, out var list) && list.Count > 0 ? list[^1].Sequence + 1 : 1;
    }

    /// <summary>Releases after <paramref name="afterSequence"/>, in order, at most <paramref name="limit"/>.</summary>
    public IReadOnlyList<StoredRelease> After(string partner, long afterSequence, int limit)
    {
        lock (_lock)
            return _byPartner.TryGetValue(partner, out var list)
                ? list.Where(r => r.Sequence > afterSequence).Take(limit).ToList()
                : [];
    }

    public int Count(string partner)
    {
        lock (_lock) return _byPartner.TryGetValue(partner, out var list) ? list.Count : 0;
    }

    /// <summary>Stores a new release; throws when the sequence or the window already has one.</summary>
    public StoredRelease Add(string partner, long sequence, DateTimeOffset windowStart, byte[] envelope)
    {
        lock (_lock)
        {
            if (HasWindow(partner, windowStart)) throw new ReleaseConflictException($"window {windowStart:O} for {partner} is already released");
            var dir = PrivateFiles.CreateFolder(Path.Combine(_root, partner)).FullName;
            var path = Path.Combine(dir, $"{sequence:D10}_{windowStart.ToUnixTimeSeconds()}.json");
            // Created 0600, then made read-only (0400): a release is never rewritten.
            using (var fs = new FileStream(path, PrivateFiles.Options(FileMode.CreateNew)))
            {
                fs.Write(envelope);
                fs.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead);
            var stored = new StoredRelease(partner, sequence, windowStart, path);
            if (!_byPartner.TryGetValue(partner, out var list)) _byPartner[partner] = list = [];
            list.Add(stored);
            return stored;
        }
    }

    /// <summary>The release file of this window exists on disk now.</summary>
    public bool HasFile(string partner, DateTimeOffset windowStart)
    {
        lock (_lock)
            return _byPartner.TryGetValue(partner, out var list) && list.Any(r => r.WindowStart == windowStart && File.Exists(r.Path));
    }

    /// <summary>
    /// Writes again the file of a release that was recorded (<see cref="ReleaseRecords"/>) but whose
    /// file has gone: same sequence, same window, same name; nothing happens when the file exists.
    /// </summary>
    public StoredRelease Restore(string partner, long sequence, DateTimeOffset windowStart, byte[] envelope)
    {
        lock (_lock)
        {
            var dir = Directory.CreateDirectory(Path.Combine(_root, partner)).FullName;
            var path = Path.Combine(dir, $"{sequence:D10}_{windowStart.ToUnixTimeSeconds()}.json");
            if (!_byPartner.TryGetValue(partner, out var list)) _byPartner[partner] = list = [];
            var stored = list.FirstOrDefault(r => r.Sequence == sequence);
            if (stored is not null && stored.WindowStart != windowStart)
                throw new ReleaseConflictException($"sequence {sequence} for {partner} belongs to window {stored.WindowStart:O}, not {windowStart:O}");
            if (!File.Exists(path))
            {
                using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    fs.Write(envelope);
                    fs.Flush(flushToDisk: true);
                }
                FileSync.Directory(dir);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead);
            }
            if (stored is null)
            {
                stored = new StoredRelease(partner, sequence, windowStart, path);
                list.Add(stored);
                list.Sort((x, y) => x.Sequence.CompareTo(y.Sequence));
            }
            return stored;
        }
    }

    /// <summary>
    /// Records that a window was released once but neither its file nor its record survives: it is
    /// never computed again (that would draw fresh noise), so it stays missing from the feed.
    /// </summary>
    public void MarkLost(string partner, DateTimeOffset windowStart, string reason)
    {
        var path = Path.Combine(_root, partner, $"{windowStart.ToUnixTimeSeconds()}.lost");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, reason);
    }

    public bool IsLost(string partner, DateTimeOffset windowStart) =>
        File.Exists(Path.Combine(_root, partner, $"{windowStart.ToUnixTimeSeconds()}.lost"));

    public bool IsRefused(string partner, DateTimeOffset windowStart) => File.Exists(RefusedMarker(partner, windowStart));

    /// <summary>Records that a window will not be released (budget exhausted), so it is not retried.</summary>
    public void MarkRefused(string partner, DateTimeOffset windowStart, string reason)
    {
        var path = RefusedMarker(partner, windowStart);
        PrivateFiles.CreateFolder(Path.GetDirectoryName(path)!);
        PrivateFiles.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(reason));
    }

    public int RefusedCount(string partner)
    {
        var dir = Path.Combine(_root, partner);
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.refused").Count() : 0;
    }

    private string RefusedMarker(string partner, DateTimeOffset windowStart) =>
        Path.Combine(_root, partner, $"{windowStart.ToUnixTimeSeconds()}.refused");

    public static JsonObject? Payload(StoredRelease r) => JsonNode.Parse(r.Envelope)?["payload"] as JsonObject;
}

/// <summary>A release for this window or sequence exists already: releases are immutable.</summary>
public sealed class ReleaseConflictException(string message) : Exception(message);
