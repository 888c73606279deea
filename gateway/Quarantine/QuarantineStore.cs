using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using CityGateway.Core;
using Microsoft.Extensions.Options;

namespace CityGateway.Quarantine;

/// <summary>
/// Where bad input goes: an append-only JSON-lines file with the reason and the (bounded) payload,
/// and a counter per reason. Nothing leaves the pipeline without a count and a reason.
/// The file is bounded: at <see cref="QuarantineOptions.MaxFileBytes"/> it is renamed to Path.1
/// (Path.1 to Path.2, ...) and a new one started; of <see cref="QuarantineOptions.MaxFiles"/> files
/// beyond, the oldest is removed, its entries counted in <see cref="RemovedByRotation"/> and logged.
/// </summary>
public sealed partial class QuarantineStore : IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // Keep payloads readable in the file; it is JSON lines, not HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly QuarantineOptions _options;
    private readonly ILogger<QuarantineStore> _logger;
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly object _fileLock = new();
    private FileStream? _file;
    private long _total;
    private long _removed;

    public QuarantineStore(IOptions<QuarantineOptions> options, ILogger<QuarantineStore> logger)
    {
        _options = options.Value;
        _logger = logger;
    }

    public string FilePath => Path.GetFullPath(_options.Path);

    public long Total => Interlocked.Read(ref _total);

    /// <summary>Entries quarantined since start, by reason (the stored entries may be fewer: see <see cref="RemovedByRotation"/>).</summary>
    public IReadOnlyDictionary<string, long> CountsByReason => _counts;

    /// <summary>Entries removed from the quarantine since start because the files reached <see cref="QuarantineOptions.MaxFiles"/>.</summary>
    public long RemovedByRotation => Interlocked.Read(ref _removed);

    public void Add(string reason, string detail, RawFrame? frame, string? route = null, string? device = null, string? field = null)
    {
        string? payload = null, encoding = null;
        if (frame is not null)
        {
            var bytes = frame.Payload.AsSpan(0, Math.Min(frame.Payload.Length, _options.MaxPayloadBytes));
            if (Utf8.IsValid(bytes))
                payload = Encoding.UTF8.GetString(bytes);
            else
            {
                payload = Convert.ToBase64String(bytes);
                encoding = "base64";
            }
        }
        Add(new QuarantineEntry
        {
            Time = DateTimeOffset.UtcNow,
            Reason = reason,
            Detail = detail,
            Source = frame?.Source,
            Topic = frame?.Topic,
            Route = route,
            Device = device,
            Field = field,
            ReceivedAtNs = frame?.ReceivedAtNs,
            Payload = payload,
            PayloadEncoding = encoding,
            PayloadBytes = frame?.OriginalLength,
        });
    }

    public void Add(QuarantineEntry entry)
    {
        if (entry.Id is null) entry = entry.WithId(Guid.CreateVersion7().ToString("N"));
        _counts.AddOrUpdate(entry.Reason, 1, static (_, n) => n + 1);
        Interlocked.Increment(ref _total);
        LogQuarantined(entry.Reason, entry.Topic, entry.Device, entry.Field, entry.Detail);
        var line = JsonSerializer.SerializeToUtf8Bytes(entry, Json);
        lock (_fileLock)
        {
            try
            {
                if (_file is null)
                {
                    var dir = Path.GetDirectoryName(FilePath);
                    if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                    _file = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read);
                }
                // An entry larger than a whole file still goes in one, alone.
                if (_file.Position > 0 && _file.Position + line.Length + 1 > _options.MaxFileBytes)
                {
                    _file.Dispose();
                    _file = null;
                    Rotate();
                    _file = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read);
                }
                _file.Write(line);
                _file.WriteByte((byte)'\n');
                _file.Flush();
            }
            catch (IOException e)
            {
                // The count above still records the entry; the file problem is loud in the log.
                LogFileError(FilePath, e.Message);
                _file?.Dispose();
                _file = null;
            }
        }
    }

    /// <summary>Reads entries back from the rotated files and the current one, newest last.</summary>
    /// <remarks>A rotation while this reads may show an entry twice or not at all; a second read is whole again.</remarks>
    public IEnumerable<QuarantineEntry> ReadAll()
    {
        foreach (var path in RotatedFiles().Select(f => f.Path).Reverse().Append(FilePath))
        {
            FileStream stream;
            try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
            catch (FileNotFoundException) { continue; }      // removed by a rotation since the listing, or never written
            catch (DirectoryNotFoundException) { continue; }
            using (stream)
            using (var reader = new StreamReader(stream, Encoding.UTF8))
            {
                while (reader.ReadLine() is { } line)
                {
                    if (line.Length == 0) continue;
                    QuarantineEntry? e;
                    try { e = JsonSerializer.Deserialize<QuarantineEntry>(line, Json); }
                    catch (JsonException) { continue; } // a torn last line after a crash
                    if (e is not null) yield return e;
                }
            }
        }
    }

    /// <summary>The rotated files beside the current one (Path.1, Path.2, ...), newest (lowest number) first.</summary>
    private List<(int Index, string Path)> RotatedFiles()
    {
        var dir = Path.GetDirectoryName(FilePath)!;
        var prefix = Path.GetFileName(FilePath) + ".";
        if (!Directory.Exists(dir)) return [];
        var files = new List<(int, string)>();
        foreach (var path in Directory.EnumerateFiles(dir, prefix + "*"))
        {
            // The pattern also matches the current file itself (".*" matches nothing, the Windows way).
            var name = Path.GetFileName(path);
            if (name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(name.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, null, out int i) && i > 0)
                files.Add((i, path));
        }
        files.Sort();
        return files;
    }

    /// <summary>Shifts the files by one (the current one becomes Path.1); those past MaxFiles are removed and their entries counted. Under the file lock.</summary>
    private void Rotate()
    {
        var removedIds = new HashSet<string>(StringComparer.Ordinal);
        long removed = 0;
        var rotated = RotatedFiles();
        for (int k = rotated.Count - 1; k >= 0; k--)
        {
            var (i, path) = rotated[k];
            if (i + 1 < _options.MaxFiles) File.Move(path, $"{FilePath}.{i + 1}", overwrite: true);
            else removed += Remove(path, removedIds);
        }
        if (_options.MaxFiles > 1) File.Move(FilePath, FilePath + ".1", overwrite: true);
        else removed += Remove(FilePath, removedIds);
        if (removed == 0) return;
        Interlocked.Add(ref _removed, removed);
        LogRotatedAway(removed, RemovedByRotation, _options.MaxFiles, _options.MaxFileBytes, FilePath);
        ForgetReplayed(removedIds);
    }

    /// <summary>Deletes a quarantine file; returns how many entries it held and adds their ids to <paramref name="ids"/>.</summary>
    private static long Remove(string path, HashSet<string> ids)
    {
        long entries = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            entries++;
            // Entries are written id first: {"id":"<32 hex digits>",...
            if (line.StartsWith("{\"id\":\"", StringComparison.Ordinal) && line.Length > 39) ids.Add(line.Substring(7, 32));
        }
        File.Delete(path);
        return entries;
    }

    /// <summary>Drops removed entries from the .replayed file, so it stays as bounded as the entries it marks.</summary>
    private void ForgetReplayed(HashSet<string> removedIds)
    {
        if (removedIds.Count == 0 || !File.Exists(ReplayedPath)) return;
        var kept = File.ReadLines(ReplayedPath).Where(l => l.Length > 0 && !removedIds.Contains(l)).ToList();
        var temp = ReplayedPath + ".tmp";
        File.WriteAllLines(temp, kept);
        File.Move(temp, ReplayedPath, overwrite: true);
    }

    private string ReplayedPath => FilePath + ".replayed";

    /// <summary>Ids of entries already replayed (one per line in the .replayed file beside the quarantine file).</summary>
    public HashSet<string> ReplayedIds()
    {
        lock (_fileLock)
            return File.Exists(ReplayedPath) ? File.ReadLines(ReplayedPath).Where(l => l.Length > 0).ToHashSet() : [];
    }

    public void MarkReplayed(IEnumerable<string> ids)
    {
        lock (_fileLock) File.AppendAllLines(ReplayedPath, ids);
    }

    public void Dispose()
    {
        lock (_fileLock)
        {
            _file?.Dispose();
            _file = null;
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "Quarantined ({Reason}) topic {Topic} device {Device} field {Field}: {Detail}")]
    private partial void LogQuarantined(string reason, string? topic, string? device, string? field, string detail);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Cannot write the quarantine file {Path}: {Error}")]
    private partial void LogFileError(string path, string error);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning,
        Message = "Quarantine rotation removed {Removed} entries ({Total} since start): the quarantine keeps {MaxFiles} files of {MaxFileBytes} bytes beside {Path} (Gateway:Quarantine:MaxFiles, MaxFileBytes)")]
    private partial void LogRotatedAway(long removed, long total, int maxFiles, long maxFileBytes, string path);
}
