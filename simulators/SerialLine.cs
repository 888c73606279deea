namespace CityGateway.Simulators;

/// <summary>The ways the serial simulator damages a line. Every damaged line is still exactly one line
/// (no line ending inside it) and fails a reader that requires checksums.</summary>
public static class SerialCorruption
{
    /// <summary>A correct line whose "*hh" does not match its content.</summary>
    public const string BadChecksum = "bad_checksum";

    /// <summary>Random bytes (never CR or LF, possibly NUL or ≥ 0x80) inserted before the checksum;
    /// the checksum no longer matches.</summary>
    public const string GarbageInside = "garbage_inside";

    /// <summary>A burst of random bytes on a line of its own, between two intact lines; it does not
    /// end in a "*hh" that matches it.</summary>
    public const string GarbageLine = "garbage_line";

    /// <summary>A line cut short before its checksum.</summary>
    public const string Truncated = "truncated";

    public static readonly IReadOnlyList<string> All = [BadChecksum, GarbageInside, GarbageLine, Truncated];
}

/// <summary>One line as the serial simulator produced and wrote it.</summary>
public sealed class SerialLine
{
    /// <summary>The device whose reading the line carries (wq-s001, trf-s001, env-s001); null for a
    /// garbage line, which belongs to no device.</summary>
    public string? Device { get; init; }

    /// <summary>wq-instrument, traffic-counter or aq-serial; null for a garbage line.</summary>
    public string? DeviceType { get; init; }

    /// <summary>water, traffic or environment (the InfluxDB measurement); null for a garbage line.</summary>
    public string? Domain { get; init; }

    /// <summary>kv, csv or jsonl.</summary>
    public required string Format { get; init; }

    /// <summary>The exact bytes written, line ending included.</summary>
    public required byte[] Text { get; init; }

    /// <summary>True for a line a reader should accept and store.</summary>
    public bool Intact { get; init; }

    /// <summary>One of <see cref="SerialCorruption.All"/> for a damaged line, null for an intact one.</summary>
    public string? Corruption { get; init; }

    /// <summary>Intact lines: the device's sequence number, also written as "seq". A damaged line uses
    /// up its device's reading too, so the intact sequence numbers of a device can have gaps.</summary>
    public long? Sequence { get; init; }

    /// <summary>Intact lines: source field names and values exactly as written, "seq" included.</summary>
    public IReadOnlyDictionary<string, double>? SourceValues { get; init; }

    /// <summary>Intact csv lines: the "ts" column as Unix epoch nanoseconds (whole milliseconds); null
    /// for the other formats, whose lines carry no time.</summary>
    public long? TimestampNs { get; init; }

    /// <summary>Number of write calls the line is written in: 1, or 2–4 for a split write.</summary>
    public int Writes => SplitAt.Length + 1;

    /// <summary>Offsets in <see cref="Text"/> where a split write starts a new write call.</summary>
    internal int[] SplitAt { get; init; } = [];

    /// <summary>Pause before each write call after the first, in milliseconds.</summary>
    internal int[] PausesMs { get; init; } = [];

    public override string ToString()
    {
        var printable = new string(Text.Select(b => b is >= 0x20 and < 0x7F ? (char)b : '.').ToArray());
        return Intact ? $"{Device} #{Sequence}: {printable}" : $"{Corruption}: {printable}";
    }
}
