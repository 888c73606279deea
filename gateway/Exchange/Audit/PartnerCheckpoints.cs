using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Audit;

/// <summary>The outcome of <see cref="PartnerCheckpoints.Keep"/>.</summary>
/// <param name="Accepted">The checkpoint is signed by a trusted key and does not contradict the ones kept.</param>
/// <param name="Appended">It was new and is now the last line of <c>checkpoints.jsonl</c> (false for one already kept).</param>
/// <param name="Reason">Why it was refused, or what was done.</param>
public sealed record CheckpointKeeping(bool Accepted, bool Appended, string Reason, AuditCheckpoint? Checkpoint);

/// <summary>
/// The federation side of checkpoints: keeps the checkpoints a partner city serves, so that its
/// audit log can later be checked against them (<c>Gateway exchange verify-audit --file LOG
/// --checkpoint FOLDER/checkpoints.jsonl --public-key PEM</c>).
/// </summary>
/// <remarks>
/// A checkpoint is kept only when it is a well-formed checkpoint (of <c>expectedCity</c> when
/// given) signed by the key the caller trusts for its key id, and when it does not go back: its
/// seq is above the last kept one's, or equal with the same head (then it is already kept). A
/// lower seq, or the same seq with another head, is refused: a city that served checkpoint N
/// cannot later serve an earlier state of its log. Appends are one write each, flushed to disk;
/// calls are serialised within the process.
/// </remarks>
public static class PartnerCheckpoints
{
    public const string FileName = "checkpoints.jsonl";
    private static readonly object Gate = new();

    /// <summary>
    /// Verifies <paramref name="checkpoint"/> and appends it to <c>FOLDER/checkpoints.jsonl</c> when new.
    /// A refusal is a result, not an exception; an <see cref="IOException"/> means the folder cannot be written.
    /// </summary>
    /// <param name="trustedKey">The public key PEM trusted for a key id, or null for a key id not trusted.</param>
    /// <param name="expectedCity">When given, the checkpoint's city must be this one.</param>
    public static CheckpointKeeping Keep(string folder, JsonObject? checkpoint, Func<string, string?> trustedKey, string? expectedCity = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(trustedKey);
        CheckpointKeeping Refuse(string why, AuditCheckpoint? c = null) => new(false, false, why, c);

        if (checkpoint is null) return Refuse("the partner served no checkpoint");
        var parsed = AuditCheckpoint.Parse(checkpoint, out var error);
        if (parsed is null) return Refuse("not a valid checkpoint: " + error);
        if (expectedCity is not null && parsed.City != expectedCity)
            return Refuse($"the checkpoint is of city \"{parsed.City}\", not of {expectedCity}", parsed);
        var pem = trustedKey(parsed.KeyId);
        if (pem is null) return Refuse($"the checkpoint is signed with key {parsed.KeyId}, which is not trusted for this partner", parsed);
        if (!parsed.VerifySignature(pem, out var signatureError)) return Refuse("the checkpoint's signature does not verify: " + signatureError, parsed);

        lock (Gate)
        {
            Directory.CreateDirectory(folder);
            var path = Path.Combine(folder, FileName);
            var (last, tornTail) = ReadLast(path);
            if (last is not null)
            {
                if (parsed.Seq < last.Seq)
                    return Refuse($"the checkpoint goes back: seq {parsed.Seq}, but seq {last.Seq} was kept before (the partner's log was rolled back or forked)", parsed);
                if (parsed.Seq == last.Seq)
                    return parsed.Head == last.Head
                        ? new CheckpointKeeping(true, false, $"seq {parsed.Seq} is already kept", parsed)
                        : Refuse($"seq {parsed.Seq} was kept with head {last.Head}, this checkpoint says {parsed.Head} (the partner's log forked)", parsed);
            }
            var line = Encoding.UTF8.GetBytes((tornTail ? "\n" : "") + checkpoint.ToJsonString() + "\n");
            using (var file = new FileStream(path, PrivateFiles.Options(FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0)))
            {
                file.Write(line);
                file.Flush(flushToDisk: true);
            }
            return new CheckpointKeeping(true, true, $"kept seq {parsed.Seq}", parsed);
        }
    }

    /// <summary>The last checkpoint kept in <c>FOLDER/checkpoints.jsonl</c>, or null when there is none.</summary>
    public static AuditCheckpoint? LastKept(string folder)
    {
        lock (Gate) return ReadLast(Path.Combine(folder, FileName)).Last;
    }

    /// <summary>
    /// The last complete line that is a checkpoint (lines are read backwards from the end, at most
    /// <see cref="CheckpointVerifier.MaxLineBytes"/> each); whether the file ends in a torn line.
    /// </summary>
    private static (AuditCheckpoint? Last, bool TornTail) ReadLast(string path)
    {
        if (!File.Exists(path)) return (null, false);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long end = file.Length;
        if (end == 0) return (null, false);
        var one = new byte[1];
        file.Position = end - 1;
        file.ReadExactly(one);
        bool torn = one[0] != (byte)'\n';
        // Skip a torn tail: it was never a kept checkpoint.
        long lineEnd = torn ? LastNewline(file, end) : end - 1;
        while (lineEnd > 0)
        {
            long start = LastNewline(file, lineEnd) + 1;
            int length = (int)Math.Min(lineEnd - start, CheckpointVerifier.MaxLineBytes);
            if (length > 0 && lineEnd - start <= CheckpointVerifier.MaxLineBytes)
            {
                var bytes = new byte[length];
                file.Position = start;
                file.ReadExactly(bytes);
                try
                {
                    if (AuditCheckpoint.Parse(JsonNode.Parse(bytes), out _) is { } checkpoint) return (checkpoint, torn);
                }
                catch (JsonException)
                {
                    // A damaged line: the one before it is the last kept checkpoint.
                }
            }
            lineEnd = start - 1;
        }
        return (null, torn);
    }

    /// <summary>The offset of the last '\n' before <paramref name="before"/>, or -1.</summary>
    private static long LastNewline(FileStream file, long before)
    {
        var buffer = new byte[4096];
        long pos = before;
        while (pos > 0)
        {
            int n = (int)Math.Min(buffer.Length, pos);
            pos -= n;
            file.Position = pos;
            file.ReadExactly(buffer, 0, n);
            int i = Array.LastIndexOf(buffer, (byte)'\n', n - 1, n);
            if (i >= 0) return pos + i;
        }
        return -1;
    }
}
