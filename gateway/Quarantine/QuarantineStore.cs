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

    public QuarantineStore(IOptions<QuarantineOptions> options, ILogger<QuarantineStore> logger)
    {
        _options = options.Value;
        _logger = logger;
    }

    public string FilePath => Path.GetFullPath(_options.Path);

    public long Total => Interlocked.Read(ref _total);

    public IReadOnlyDictionary<string, long> CountsByReason => _counts;

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

    /// <summary>Reads entries back from the file, newest last.</summary>
    public IEnumerable<QuarantineEntry> ReadAll()
    {
        if (!File.Exists(FilePath)) yield break;
        using var stream = new FileStream(FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            QuarantineEntry? e;
            try { e = JsonSerializer.Deserialize<QuarantineEntry>(line, Json); }
            catch (JsonException) { continue; } // a torn last line after a crash
            if (e is not null) yield return e;
        }
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
}
