using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Audit;

/// <summary>A checkpoint file that cannot be read, or is too large to be one.</summary>
public sealed class CheckpointFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One checkpoint checked against a log: <see cref="Line"/> of the checkpoint file (1-based).</summary>
public sealed record CheckpointCheck(long Line, AuditCheckpoint? Checkpoint, bool Ok, string Detail);

/// <summary>The log's own chain and every checkpoint checked against it; <see cref="Ok"/> only when all hold.</summary>
public sealed record CheckpointVerification(AuditVerification Log, IReadOnlyList<CheckpointCheck> Checkpoints)
{
    public bool Ok => Log.Ok && Checkpoints.Count > 0 && Checkpoints.All(c => c.Ok);
}

/// <summary>
/// Checks an audit log against checkpoints kept earlier: each checkpoint's signature with the
/// city's public key, then that the log still has the entry with the checkpoint's seq, with the
/// checkpoint's hash, and that the chain up to it verifies. A log edited after a checkpoint was
/// issued and re-chained from there on has another hash at that seq; a log cut below it ends
/// before it. Both fail, though the chain alone verifies.
/// </summary>
public static class CheckpointVerifier
{
    /// <summary>A checkpoint file holds at most this many bytes.</summary>
    public const long MaxFileBytes = 64L << 20;
    /// <summary>One checkpoint line is at most this long.</summary>
    public const int MaxLineBytes = 64 << 10;

    /// <summary>
    /// The checkpoints in <paramref name="path"/>: one envelope per line (as the gateway and
    /// <see cref="PartnerCheckpoints"/> keep them), or a single JSON envelope however indented
    /// (as saved from <c>GET /api/exchange/v1/checkpoint</c>). A line that is not JSON comes back
    /// with its error. Throws <see cref="CheckpointFileException"/> when the file cannot be read.
    /// </summary>
    public static IReadOnlyList<(long Line, JsonNode? Node, string? Error)> ReadFile(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new CheckpointFileException($"the checkpoint file {path} does not exist");
            if (info.Length > MaxFileBytes) throw new CheckpointFileException($"the checkpoint file {path} has {info.Length} bytes, more than {MaxFileBytes}");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new CheckpointFileException($"cannot read the checkpoint file {path}: {e.Message}", e);
        }
        return Read(bytes);
    }

    internal static IReadOnlyList<(long Line, JsonNode? Node, string? Error)> Read(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        // One document spread over several lines: a checkpoint saved as served.
        if (text.TrimStart().StartsWith('{') && text.Contains('\n') && bytes.Length <= MaxLineBytes)
        {
            try
            {
                if (JsonNode.Parse(text) is JsonObject single) return [(1, single, null)];
            }
            catch (JsonException)
            {
                // Not one document: read it as JSON lines below, which reports each bad line.
            }
        }
        var result = new List<(long, JsonNode?, string?)>();
        long lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            if (Encoding.UTF8.GetByteCount(line) > MaxLineBytes)
            {
                result.Add((lineNo, null, $"the line is longer than {MaxLineBytes} bytes"));
                continue;
            }
            try { result.Add((lineNo, JsonNode.Parse(line), null)); }
            catch (JsonException e) { result.Add((lineNo, null, "not JSON: " + e.Message)); }
        }
        return result;
    }

    /// <summary>Checks the log at <paramref name="logPath"/> against the checkpoints (from <see cref="ReadFile"/>).</summary>
    public static CheckpointVerification Verify(string logPath, IReadOnlyList<(long Line, JsonNode? Node, string? Error)> checkpoints, string publicKeyPem) =>
        Verify(onEntry => AuditLog.Verify(logPath, onEntry), checkpoints, publicKeyPem);

    /// <summary>As <see cref="Verify(string, IReadOnlyList{ValueTuple{long, JsonNode, string}}, string)"/>, for a log read from a stream.</summary>
    public static CheckpointVerification Verify(Stream log, IReadOnlyList<(long Line, JsonNode? Node, string? Error)> checkpoints, string publicKeyPem) =>
        Verify(onEntry => AuditLog.Verify(log, onEntry), checkpoints, publicKeyPem);

    private static CheckpointVerification Verify(Func<Action<long, string>, AuditVerification> walk,
        IReadOnlyList<(long Line, JsonNode? Node, string? Error)> checkpoints, string publicKeyPem)
    {
        var parsed = new List<(long Line, AuditCheckpoint? Checkpoint, string? Error)>();
        foreach (var (line, node, readError) in checkpoints)
        {
            if (readError is not null) { parsed.Add((line, null, readError)); continue; }
            var checkpoint = AuditCheckpoint.Parse(node, out var error);
            if (checkpoint is not null && !checkpoint.VerifySignature(publicKeyPem, out var signatureError))
                error = "the signature does not verify with the given public key: " + signatureError;
            parsed.Add((line, checkpoint, error));
        }

        // One pass over the log, keeping the hashes at the seqs the signed checkpoints name.
        var wanted = parsed.Where(p => p.Error is null).Select(p => p.Checkpoint!.Seq).ToHashSet();
        var hashes = new Dictionary<long, string>();
        var log = walk((seq, hash) => { if (wanted.Contains(seq)) hashes[seq] = hash; });

        var results = new List<CheckpointCheck>();
        foreach (var (line, checkpoint, error) in parsed)
        {
            if (error is not null) { results.Add(new CheckpointCheck(line, checkpoint, false, error)); continue; }
            var c = checkpoint!;
            string detail;
            bool ok = false;
            if (hashes.TryGetValue(c.Seq, out var hash))
            {
                ok = hash == c.Head;
                detail = ok
                    ? $"the log still holds seq {c.Seq} with the checkpoint's hash"
                    : $"the log's entry seq {c.Seq} has hash {hash}, the checkpoint says {c.Head}: the log was changed after the checkpoint was issued";
            }
            else if (log.Ok)
                detail = $"the log ends at seq {log.Head.Seq}, the checkpoint covers {c.Seq}: entries were removed from its end";
            else
                detail = $"the chain breaks at line {log.FirstBreak!.Line} before seq {c.Seq}: {log.FirstBreak.Problem}: {log.FirstBreak.Detail}";
            results.Add(new CheckpointCheck(line, c, ok, detail));
        }
        return new CheckpointVerification(log, results);
    }
}
