using System.Globalization;

namespace CityGateway.Exchange.Audit;

/// <summary>What is wrong with the first line of an audit log that does not verify.</summary>
public enum AuditProblem
{
    /// <summary>The file cannot be opened or read.</summary>
    Unreadable,
    /// <summary>The last line has no line terminator: a write cut short (crash, full disk) or a truncated file.</summary>
    TornLine,
    /// <summary>The line is not JSON (or is empty).</summary>
    BadJson,
    /// <summary>JSON, but not an entry: a member missing, extra, duplicated or of the wrong type.</summary>
    MalformedEntry,
    /// <summary>An entry, but not byte for byte the form the gateway writes.</summary>
    NotCanonical,
    /// <summary>The sequence number is not the previous one plus one (a line deleted, inserted or moved).</summary>
    SeqGap,
    /// <summary>"prev" is not the hash of the line before.</summary>
    PrevMismatch,
    /// <summary>"hash" is not the SHA-256 of the entry: the entry was changed.</summary>
    HashMismatch,
    /// <summary>The entry with the anchored sequence number has another hash.</summary>
    AnchorMismatch,
    /// <summary>The log ends before the anchored sequence number: entries were removed from its end.</summary>
    MissingAnchor,
}

/// <summary>The first line that breaks the chain. <see cref="Line"/> is 1-based; <see cref="Offset"/> is the line's first byte.</summary>
public sealed record AuditBreak(long Line, long? Seq, AuditProblem Problem, string Detail, long Offset)
{
    public override string ToString() =>
        $"line {Line}{(Seq is { } s ? $" (seq {s})" : "")}: {Problem}: {Detail}";
}

/// <summary>
/// The last entry of a log: its sequence number and hash. Written down or published elsewhere
/// (<c>SEQ:HASH</c>), it anchors the log: a later verification with the anchor also detects
/// entries removed from the end, which the chain alone cannot.
/// </summary>
public sealed record AuditHead(long Seq, string Hash)
{
    public static readonly AuditHead Genesis = new(0, AuditLog.GenesisHash);

    public override string ToString() => Seq.ToString(CultureInfo.InvariantCulture) + ":" + Hash;

    public static bool TryParse(string? text, out AuditHead head)
    {
        head = Genesis;
        if (text is null) return false;
        int colon = text.IndexOf(':');
        if (colon <= 0) return false;
        if (!long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var seq)) return false;
        var hash = text[(colon + 1)..];
        if (!AuditLog.IsHash(hash)) return false;
        head = new AuditHead(seq, hash);
        return true;
    }
}

/// <summary>
/// The result of checking an audit log: <see cref="Ok"/> when every line verifies;
/// <see cref="Entries"/> entries verified (all of them, or those before <see cref="FirstBreak"/>);
/// <see cref="Head"/> the last verified entry (seq 0 and the genesis hash for an empty log).
/// </summary>
public sealed record AuditVerification(bool Ok, long Entries, AuditBreak? FirstBreak, AuditHead Head)
{
    public override string ToString() => Ok
        ? $"intact: {Entries} entries, head {Head}"
        : $"BROKEN at {FirstBreak}; {Entries} entries verified before it, last verified head {Head}";
}
