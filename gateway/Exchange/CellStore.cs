using System.Globalization;
using System.Text.Json;
using CityGateway.Exchange.Privacy;

namespace CityGateway.Exchange;

/// <summary>A (window, domain, metric, aggregate): every district cell of it is computed and noised together, once.</summary>
public sealed record CellGroupKey(DateTimeOffset WindowStart, TimeSpan Window, string Domain, string Metric, string Aggregate)
{
    /// <summary>Stable id, also the city ledger's release id for this group: domain/metric/aggregate/windowSeconds/windowStartUnix.</summary>
    public string Id => string.Create(CultureInfo.InvariantCulture,
        $"{Domain}/{Metric}/{Aggregate}/{(long)Window.TotalSeconds}/{WindowStart.ToUnixTimeSeconds()}");
}

/// <summary>
/// The one answer of a cell group: per district the released value, or null where the cell is
/// suppressed; or, when the city-wide budget refused it, no values at all (<see cref="Refused"/>).
/// <see cref="Epsilon"/> is what the group cost the city ledger (0 for non-personal metrics).
/// </summary>
public sealed record CellGroup(CellGroupKey Key, double Epsilon, bool Refused, string? Reason, IReadOnlyDictionary<string, double?> Values);

/// <summary>
/// The city-wide cell store: the single noisy answer of every cell, shared by every partner
/// entitled to it.
///
/// <para><b>Rule.</b> A cell (window, district, domain, metric, aggregate) is computed and noised
/// once. Its group is written here, one file per group (created once, never overwritten; written,
/// fsync'd and its directory fsync'd) before any release uses it, and every later release of that
/// cell, to any partner, reads the value from here. A group whose file is missing or unreadable
/// while the city ledger records its ε is lost: it is never computed again (see
/// <see cref="ReleaseJob"/>), because fresh noise for the same cell would let the two answers be
/// averaged.</para>
/// </summary>
public sealed class CellStore
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private readonly string _root;
    private readonly bool _flushToDisk;
    private readonly object _lock = new();
    private readonly Dictionary<string, CellGroup> _cache = new(StringComparer.Ordinal);

    public CellStore(string root, bool flushToDisk = true)
    {
        _root = Path.GetFullPath(root);
        _flushToDisk = flushToDisk;
        Directory.CreateDirectory(_root);
    }

    public string Root => _root;

    /// <summary>Outcome of looking a group up: found, absent (never stored), or unreadable.</summary>
    public enum Lookup { Found, Absent, Unreadable }

    public Lookup TryGet(CellGroupKey key, out CellGroup? group)
    {
        lock (_lock)
        {
            if (_cache.TryGetValue(key.Id, out group)) return Lookup.Found;
            var path = PathOf(key);
            if (!File.Exists(path)) return Lookup.Absent;
            try
            {
                var file = JsonSerializer.Deserialize<GroupFile>(File.ReadAllBytes(path), Json);
                if (file?.Values is null || file.Id != key.Id) return Lookup.Unreadable;
                group = new CellGroup(key, file.Epsilon, file.Refused, file.Reason, file.Values);
                _cache[key.Id] = group;
                return Lookup.Found;
            }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
            {
                group = null;
                return Lookup.Unreadable;
            }
        }
    }

    /// <summary>Stores a new group durably; throws <see cref="ReleaseConflictException"/> when it exists already.</summary>
    public void Add(CellGroup group)
    {
        lock (_lock)
        {
            var path = PathOf(group.Key);
            var dir = Directory.CreateDirectory(Path.GetDirectoryName(path)!).FullName;
            var bytes = JsonSerializer.SerializeToUtf8Bytes(new GroupFile
            {
                Id = group.Key.Id, Epsilon = group.Epsilon, Refused = group.Refused, Reason = group.Reason,
                Values = group.Values.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal),
            }, Json);
            try
            {
                using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                fs.Write(bytes);
                fs.Flush(flushToDisk: _flushToDisk);
            }
            catch (IOException) when (File.Exists(path))
            {
                throw new ReleaseConflictException($"cell group {group.Key.Id} is already stored");
            }
            if (_flushToDisk) FileSync.Directory(dir);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead);
            _cache[group.Key.Id] = group;
        }
    }

    private string PathOf(CellGroupKey k) => Path.Combine(_root, k.Domain, k.Metric, k.Aggregate,
        string.Create(CultureInfo.InvariantCulture, $"{(long)k.Window.TotalSeconds}_{k.WindowStart.ToUnixTimeSeconds()}.json"));

    private sealed class GroupFile
    {
        public string? Id { get; set; }
        public double Epsilon { get; set; }
        public bool Refused { get; set; }
        public string? Reason { get; set; }
        public Dictionary<string, double?>? Values { get; set; }
    }
}

/// <summary>fsync of a directory, so a created or renamed file in it survives a power loss (POSIX; NTFS journals this itself).</summary>
internal static class FileSync
{
    public static void Directory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = DirectorySync.Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to sync it (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        try
        {
            if (DirectorySync.Fsync(fd) != 0)
                throw new IOException($"fsync of directory {directory} failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            DirectorySync.Close(fd);
        }
    }
}
