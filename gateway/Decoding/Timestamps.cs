using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;
using CityGateway.Core;

namespace CityGateway.Decoding;

/// <summary>Timestamp parsing shared by the decoders. All results are Unix epoch nanoseconds.</summary>
public static class Timestamps
{
    /// <summary>Reads a JSON number or string at the reader's position as a timestamp.</summary>
    public static bool TryRead(ref Utf8JsonReader reader, string format, out long ns, out string? error)
    {
        ns = 0;
        error = null;
        if (reader.TokenType == JsonTokenType.Number)
        {
            if (format == "iso8601") { error = "expected an ISO 8601 string timestamp"; return false; }
            if (reader.TryGetInt64(out var l)) return FromInteger(l, format, out ns, out error);
            if (!reader.TryGetDouble(out var d) || !double.IsFinite(d)) { error = "timestamp is not a finite number"; return false; }
            return FromDouble(d, format, out ns, out error);
        }
        if (reader.TokenType == JsonTokenType.String)
        {
            var span = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
            if (reader.ValueIsEscaped)
            {
                var s = reader.GetString()!;
                return TryParseText(s, format, out ns, out error);
            }
            if (format is "auto" or "iso8601" && span.Length <= 64)
            {
                // Network servers send RFC 3339 with nanoseconds: parse it from the stack, without a string.
                Span<char> chars = stackalloc char[64];
                int n = System.Text.Encoding.UTF8.GetChars(span, chars);
                switch (ParseRfc3339Nanos(chars[..n], out ns))
                {
                    case Rfc3339.Parsed: return true;
                    case Rfc3339.OutOfRange: error = OutOfRange(System.Text.Encoding.UTF8.GetString(span)); return false;
                }
            }
            if (format is "auto" or "iso8601" && Utf8Parser.TryParse(span, out DateTimeOffset dto, out int used, 'O') && used == span.Length)
            {
                if (UnixTime.TryToNs(dto, out ns)) return true;
                error = OutOfRange(System.Text.Encoding.UTF8.GetString(span));
                return false;
            }
            return TryParseText(System.Text.Encoding.UTF8.GetString(span), format, out ns, out error);
        }
        error = $"timestamp must be a number or a string, not {reader.TokenType}";
        return false;
    }

    public static bool TryParseText(string s, string format, out long ns, out string? error)
    {
        ns = 0;
        error = null;
        if (format != "iso8601" && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l))
            return FromInteger(l, format, out ns, out error);
        if (format is "auto" or "iso8601")
        {
            // RFC 3339 with nanosecond fractions (ChirpStack, The Things Stack) has more digits than
            // DateTimeOffset keeps: it would round them to 100 ns, so the fraction is read separately.
            switch (ParseRfc3339Nanos(s, out ns))
            {
                case Rfc3339.Parsed: return true;
                case Rfc3339.OutOfRange: error = OutOfRange(s); return false;
            }
            if (DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var dto))
            {
                if (UnixTime.TryToNs(dto, out ns)) return true;
                error = OutOfRange(s);
                return false;
            }
        }
        error = $"'{Truncate(s)}' is not a {(format == "auto" ? "recognised" : format)} timestamp";
        return false;
    }

    private static string OutOfRange(string s) =>
        $"'{Truncate(s)}' is outside the range of nanosecond timestamps (1677-09-21 to 2262-04-11)";

    /// <summary>Parses RFC 3339 timestamps with up to 9 fractional digits, e.g. 2022-07-18T09:34:15.775023242+00:00.</summary>
    public static bool TryParseRfc3339Nanos(string s, out long ns) => ParseRfc3339Nanos(s, out ns) == Rfc3339.Parsed;

    private enum Rfc3339 { NotRfc3339, Parsed, OutOfRange }

    private static Rfc3339 ParseRfc3339Nanos(ReadOnlySpan<char> s, out long ns)
    {
        ns = 0;
        int dot = s.IndexOf('.');
        // The fraction must follow the seconds of a time of day: ...hh:mm:ss.fffffffff
        if (dot < 8 || s[dot - 3] != ':' || s[dot - 6] != ':' || !char.IsAsciiDigit(s[dot - 1]) || !char.IsAsciiDigit(s[dot - 2]))
            return Rfc3339.NotRfc3339;
        int end = dot + 1;
        while (end < s.Length && char.IsAsciiDigit(s[end])) end++;
        var frac = s.Slice(dot + 1, end - dot - 1);
        if (frac.Length == 0 || frac.Length > 9 || s.Length > 128) return Rfc3339.NotRfc3339;
        Span<char> head = stackalloc char[s.Length - frac.Length - 1];
        s[..dot].CopyTo(head);
        s[end..].CopyTo(head[dot..]);
        if (!TryParseIsoSeconds(head, out var dto) && !DateTimeOffset.TryParse(head, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out dto)) return Rfc3339.NotRfc3339;
        long fracNs = long.Parse(frac, CultureInfo.InvariantCulture);
        for (int i = frac.Length; i < 9; i++) fracNs *= 10;
        if (!UnixTime.TryToNs(dto, out var wholeNs) || wholeNs > long.MaxValue - fracNs) return Rfc3339.OutOfRange;
        ns = wholeNs + fracNs;
        return Rfc3339.Parsed;
    }

    /// <summary>The usual shape, yyyy-MM-ddTHH:mm:ss then Z or ±hh:mm, read directly (the general parser is slow).</summary>
    private static bool TryParseIsoSeconds(ReadOnlySpan<char> s, out DateTimeOffset value)
    {
        value = default;
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || s[10] is not ('T' or 't' or ' ') || s[13] != ':' || s[16] != ':') return false;
        if (!TryDigits(s[..4], out int year) || !TryDigits(s.Slice(5, 2), out int month) || !TryDigits(s.Slice(8, 2), out int day) ||
            !TryDigits(s.Slice(11, 2), out int hour) || !TryDigits(s.Slice(14, 2), out int minute) || !TryDigits(s.Slice(17, 2), out int second))
            return false;
        var zone = s[19..];
        TimeSpan offset;
        if (zone is "Z" or "z") offset = TimeSpan.Zero;
        else if (zone.Length == 6 && zone[0] is '+' or '-' && zone[3] == ':' && TryDigits(zone.Slice(1, 2), out int oh) && TryDigits(zone.Slice(4, 2), out int om)
                 && oh < 24 && om < 60)
            offset = new TimeSpan(zone[0] == '-' ? -oh : oh, zone[0] == '-' ? -om : om, 0);
        else return false;
        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(Math.Max(1, year), month) || hour > 23 || minute > 59 || second > 59 || year < 1)
            return false;
        try
        {
            value = new DateTimeOffset(year, month, day, hour, minute, second, offset).ToUniversalTime();
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    private static bool TryDigits(ReadOnlySpan<char> s, out int value)
    {
        value = 0;
        foreach (var c in s)
        {
            if (!char.IsAsciiDigit(c)) return false;
            value = value * 10 + (c - '0');
        }
        return true;
    }

    public static bool FromInteger(long v, string format, out long ns, out string? error)
    {
        error = null;
        ns = 0;
        try
        {
            switch (Resolve(format, Math.Abs((double)v)))
            {
                case "unix_s": ns = checked(v * 1_000_000_000L); return true;
                case "unix_ms": ns = checked(v * 1_000_000L); return true;
                case "unix_us": ns = checked(v * 1_000L); return true;
                case "unix_ns": ns = v; return true;
                default: error = $"timestamp format '{format}' cannot read a number"; return false;
            }
        }
        catch (OverflowException)
        {
            error = $"timestamp {v} is out of range for {format}";
            return false;
        }
    }

    public static bool FromDouble(double d, string format, out long ns, out string? error)
    {
        error = null;
        ns = 0;
        double scale = Resolve(format, Math.Abs(d)) switch
        {
            "unix_s" => 1e9, "unix_ms" => 1e6, "unix_us" => 1e3, "unix_ns" => 1, _ => double.NaN,
        };
        if (double.IsNaN(scale)) { error = $"timestamp format '{format}' cannot read a number"; return false; }
        double v = Math.Round(d * scale);
        if (!(Math.Abs(v) < 9.2e18)) { error = $"timestamp {d} is out of range"; return false; }
        ns = (long)v;
        return true;
    }

    /// <summary>For "auto", chooses the unit by magnitude: seconds up to year 2262, then ms, us, ns.</summary>
    private static string Resolve(string format, double magnitude)
    {
        if (format != "auto") return format;
        if (magnitude < 1e11) return "unix_s";      // seconds until the year 5138
        if (magnitude < 1e14) return "unix_ms";
        if (magnitude < 1e17) return "unix_us";
        return "unix_ns";
    }

    internal static string Truncate(string s, int max = 64) => s.Length <= max ? s : s[..max] + "…";
}
