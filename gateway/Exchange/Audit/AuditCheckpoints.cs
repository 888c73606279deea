using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;
using Microsoft.Extensions.Logging.Abstractions;

namespace CityGateway.Exchange.Audit;

/// <summary>
/// Issues and keeps the city's signed checkpoints of its audit log (<see cref="AuditCheckpoint"/>):
/// one after every release, and one at start-up when the log's head moved since the last (pulls
/// are logged between releases). Each is appended as one line to <c>audit-checkpoints.jsonl</c>
/// beside the audit log (append-only, flushed to disk); the latest is also held in memory and
/// served to partners (<c>GET /api/exchange/v1/checkpoint</c> and the feed's <c>checkpoint</c>).
/// </summary>
/// <remarks>
/// A checkpoint that cannot be written to the file is still served: it is a signed statement
/// about the log either way, and the partners' copies are the ones that count. The failure is
/// logged as an error. Thread-safe.
/// </remarks>
public sealed partial class AuditCheckpoints
{
    public const string FileName = "audit-checkpoints.jsonl";

    private readonly object _gate = new();
    private readonly AuditLog _log;
    private readonly ReleaseSigner _signer;
    private readonly string _city;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile JsonObject? _latest;
    private bool _tornTail;

    public AuditCheckpoints(string path, AuditLog log, ReleaseSigner signer, string cityId, ILogger? logger = null, TimeProvider? time = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _log = log;
        _signer = signer;
        _city = cityId;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _latest = LoadLatest();
    }

    /// <summary>The file the checkpoints are appended to.</summary>
    public string Path { get; }

    /// <summary>A copy of the latest checkpoint envelope, or null before the first.</summary>
    public JsonObject? Latest => (JsonObject?)_latest?.DeepClone();

    /// <summary>
    /// Signs a checkpoint of the audit log's current head, appends it to the file and makes it the
    /// latest; returns it. Null while the log is empty (there is nothing to vouch for).
    /// </summary>
    public JsonObject? Issue()
    {
        lock (_gate)
        {
            var head = _log.Head;
            if (head.Seq < 1) return null;
            var envelope = SignedDocument.Create(AuditCheckpoint.PayloadOf(_city, head, _time.GetUtcNow()), _signer);
            Append(envelope, head);
            _latest = envelope;
            LogIssued(head.Seq, head.Hash);
            return (JsonObject)envelope.DeepClone();
        }
    }

    /// <summary>
    /// At start-up: issues a checkpoint when the log's head is not the one the latest checkpoint
    /// covers (entries were appended after it, or there is none yet). Returns the latest.
    /// </summary>
    public JsonObject? IssueIfMoved()
    {
        lock (_gate)
        {
            var head = _log.Head;
            var latest = _latest is null ? null : AuditCheckpoint.Parse(_latest, out _);
            if (latest is not null && latest.Seq == head.Seq && latest.Head == head.Hash) return Latest;
            if (latest is not null && latest.Seq > head.Seq)
                LogHeadBehindCheckpoint(head.Seq, latest.Seq);
            else if (latest is not null)
            {
                // The log the gateway opened must still hold what it last vouched for; partners will check the same.
                var check = AuditLog.Verify(_log.Path, latest.AuditHead);
                if (check.FirstBreak is { Problem: AuditProblem.AnchorMismatch } broken)
                    LogLogChangedUnderCheckpoint(latest.Seq, broken.Detail);
            }
            return Issue() ?? Latest;
        }
    }

    private void Append(JsonObject envelope, AuditHead head)
    {
        var line = Encoding.UTF8.GetBytes(envelope.ToJsonString() + "\n");
        try
        {
            using var file = new FileStream(Path, new FileStreamOptions
            {
                Mode = FileMode.Append,
                Access = FileAccess.Write,
                Share = FileShare.Read,
                BufferSize = 0,
            });
            // A line torn by a crash stays as it was (evidence); the next one starts on a line of its own.
            if (_tornTail) file.Write("\n"u8);
            file.Write(line);
            file.Flush(flushToDisk: true);
            _tornTail = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogWriteFailed(head.Seq, Path, e.Message);
        }
    }

    /// <summary>The last line of the file that is a checkpoint of this city's log.</summary>
    private JsonObject? LoadLatest()
    {
        if (!File.Exists(Path)) return null;
        JsonObject? latest = null;
        try
        {
            var bytes = File.ReadAllBytes(Path);
            _tornTail = bytes.Length > 0 && bytes[^1] != (byte)'\n';
            long lineNo = 0;
            foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
            {
                lineNo++;
                if (line.Length == 0) continue;
                JsonNode? node;
                try { node = JsonNode.Parse(line); }
                catch (JsonException e)
                {
                    LogBadLine(Path, lineNo, e.Message);
                    continue;
                }
                if (AuditCheckpoint.Parse(node, out var error) is { } checkpoint && checkpoint.City == _city)
                    latest = checkpoint.Envelope;
                else
                    LogBadLine(Path, lineNo, error ?? $"a checkpoint of another city ({_city} expected)");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogReadFailed(Path, e.Message);
        }
        return latest;
    }

    [LoggerMessage(EventId = 8040, Level = LogLevel.Information, Message = "Signed an audit checkpoint at seq {Seq}, head {Head}")]
    private partial void LogIssued(long seq, string head);

    [LoggerMessage(EventId = 8041, Level = LogLevel.Error, Message = "The audit checkpoint at seq {Seq} could not be appended to {Path}: {Error}; it is served all the same")]
    private partial void LogWriteFailed(long seq, string path, string error);

    [LoggerMessage(EventId = 8042, Level = LogLevel.Warning, Message = "Line {Line} of {Path} is not a checkpoint, skipped: {Error}")]
    private partial void LogBadLine(string path, long line, string error);

    [LoggerMessage(EventId = 8043, Level = LogLevel.Error, Message = "The audit checkpoints {Path} cannot be read: {Error}; a new checkpoint is issued")]
    private partial void LogReadFailed(string path, string error);

    [LoggerMessage(EventId = 8045, Level = LogLevel.Error, Message = "The audit log no longer holds the entry the last checkpoint vouched for (seq {Seq}): {Detail}. The log was changed after the checkpoint was issued; partners holding it will see it")]
    private partial void LogLogChangedUnderCheckpoint(long seq, string detail);

    [LoggerMessage(EventId = 8044, Level = LogLevel.Error, Message = "The audit log ends at seq {Seq}, but the last checkpoint covers seq {CheckpointSeq}: the log was replaced or cut. Partners holding that checkpoint will see it")]
    private partial void LogHeadBehindCheckpoint(long seq, long checkpointSeq);
}
