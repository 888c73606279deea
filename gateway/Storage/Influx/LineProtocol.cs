using System.Buffers;
using System.Globalization;
using System.Text;
using CityGateway.Core;

namespace CityGateway.Storage.Influx;

/// <summary>
/// Writes points as InfluxDB line protocol straight into a byte buffer, nanosecond timestamps.
/// Escaping: measurement , and space; tag keys, tag values and field keys , = and space; string
/// field values " and \. InfluxDB 1.x keeps other backslashes literally, so a backslash is written
/// as is, except before a character that needs escaping or at the end of a name, where it is
/// doubled to keep the line parseable (InfluxDB then stores both). Control characters in names
/// are replaced by spaces: line protocol cannot carry them.
/// </summary>
public static class LineProtocol
{
    public static void Write(IBufferWriter<byte> buffer, Point point)
    {
        if (point.Series is { } series)
        {
            // The normaliser's points: one span for the whole line, no per-token buffer calls.
            var key = series.Encoded ??= SeriesKey(series.Measurement, series.Tags);
            var span = buffer.GetSpan(Bound(key, point));
            int n = TryWriteSeriesPoint(span, key, point);
            if (n > 0)
            {
                buffer.Advance(n);
                return;
            }
            key.CopyTo(buffer.GetSpan(key.Length));
            buffer.Advance(key.Length);
        }
        else
        {
            WriteSeries(buffer, point.Measurement, point.Tags);
        }
        for (int i = 0; i < point.Fields.Count; i++)
        {
            var f = point.Fields[i];
            WriteByte(buffer, i == 0 ? (byte)' ' : (byte)',');
            WriteName(buffer, f.Name, measurement: false);
            WriteByte(buffer, (byte)'=');
            switch (f.Kind)
            {
                case FieldKind.Float: WriteDouble(buffer, f.Float); break;
                case FieldKind.Integer: WriteLong(buffer, f.Integer); WriteByte(buffer, (byte)'i'); break;
                case FieldKind.Boolean: WriteUtf8(buffer, f.Boolean ? "true" : "false"); break;
                case FieldKind.String: WriteStringValue(buffer, f.Text ?? ""); break;
            }
        }
        WriteByte(buffer, (byte)' ');
        WriteLong(buffer, point.TimestampNs);
        WriteByte(buffer, (byte)'\n');
    }

    private static readonly SearchValues<char> NameSpecials = SearchValues.Create(
        ", =\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f" +
        "\u007f\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f" +
        "\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f");

    /// <summary>Bytes a line of <paramref name="point"/> can take at most, field names unescaped.</summary>
    private static int Bound(byte[] key, Point point)
    {
        int bound = key.Length + 1 + 20 + 1;
        foreach (var f in point.Fields)
            bound += 2 + 3 * f.Name.Length + (f.Kind == FieldKind.String ? 2 + 6 * (f.Text?.Length ?? 0) : 32);
        return bound;
    }

    /// <summary>Writes a whole line into <paramref name="span"/> (at least <see cref="Bound"/> long); 0 when a
    /// field name needs escaping or a value is text, which the general path writes.</summary>
    private static int TryWriteSeriesPoint(Span<byte> span, byte[] key, Point point)
    {
        var fields = point.Fields;
        if (fields.Count == 0) return 0;
        key.CopyTo(span);
        int n = key.Length;
        for (int i = 0; i < fields.Count; i++)
        {
            var f = fields[i];
            if (f.Kind == FieldKind.String || f.Name.AsSpan().IndexOfAny(NameSpecials) >= 0) return 0;
            span[n++] = i == 0 ? (byte)' ' : (byte)',';
            n += Encoding.UTF8.GetBytes(f.Name, span[n..]);
            span[n++] = (byte)'=';
            int w;
            switch (f.Kind)
            {
                case FieldKind.Float:
                    n += FormatDouble(span[n..], f.Float);
                    break;
                case FieldKind.Integer:
                    f.Integer.TryFormat(span[n..], out w, default, CultureInfo.InvariantCulture);
                    n += w;
                    span[n++] = (byte)'i';
                    break;
                default:
                    var text = f.Boolean ? "true"u8 : "false"u8;
                    text.CopyTo(span[n..]);
                    n += text.Length;
                    break;
            }
        }
        span[n++] = (byte)' ';
        point.TimestampNs.TryFormat(span[n..], out int t, default, CultureInfo.InvariantCulture);
        n += t;
        span[n++] = (byte)'\n';
        return n;
    }

    /// <summary>The measurement and tags as they start a line: what every point of a series shares.</summary>
    internal static byte[] SeriesKey(string measurement, KeyValuePair<string, string>[] tags)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        WriteSeries(buffer, measurement, tags);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteSeries(IBufferWriter<byte> buffer, string measurement, KeyValuePair<string, string>[] tags)
    {
        WriteName(buffer, measurement, measurement: true);
        foreach (var tag in tags)
        {
            if (string.IsNullOrEmpty(tag.Value)) continue; // InfluxDB rejects empty tag values
            WriteByte(buffer, (byte)',');
            WriteName(buffer, tag.Key, measurement: false);
            WriteByte(buffer, (byte)'=');
            WriteName(buffer, tag.Value, measurement: false);
        }
    }

    public static string ToLine(Point point)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, point);
        return Encoding.UTF8.GetString(buffer.WrittenSpan).TrimEnd('\n');
    }

    private static bool NeedsEscape(char c, bool measurement) => c is ',' or ' ' || (!measurement && c == '=');

    private static void WriteName(IBufferWriter<byte> buffer, string s, bool measurement)
    {
        bool plain = true;
        foreach (var c in s)
        {
            if (NeedsEscape(c, measurement) || c == '\\' || char.IsControl(c)) { plain = false; break; }
        }
        if (plain)
        {
            WriteUtf8(buffer, s);
            return;
        }
        var sb = new StringBuilder(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsControl(c)) c = ' ';
            if (c == '\\')
            {
                bool beforeSpecial = i + 1 == s.Length || NeedsEscape(s[i + 1], measurement) || char.IsControl(s[i + 1]) || s[i + 1] == '\\';
                sb.Append(beforeSpecial ? @"\\" : @"\");
                continue;
            }
            if (NeedsEscape(c, measurement)) sb.Append('\\');
            sb.Append(c);
        }
        WriteUtf8(buffer, sb.ToString());
    }

    private static void WriteStringValue(IBufferWriter<byte> buffer, string s)
    {
        WriteByte(buffer, (byte)'"');
        if (s.AsSpan().IndexOfAny('"', '\\') < 0)
        {
            WriteUtf8(buffer, s);
        }
        else
        {
            var sb = new StringBuilder(s.Length + 8);
            foreach (var c in s)
            {
                if (c is '"' or '\\') sb.Append('\\');
                sb.Append(c);
            }
            WriteUtf8(buffer, sb.ToString());
        }
        WriteByte(buffer, (byte)'"');
    }

    private static readonly double[] PowersOfTen = [1, 10, 100, 1000];

    private static void WriteDouble(IBufferWriter<byte> buffer, double v) => buffer.Advance(FormatDouble(buffer.GetSpan(32), v));

    /// <summary>Writes <paramref name="v"/> into <paramref name="span"/> (32 bytes at least); returns the bytes written.</summary>
    private static int FormatDouble(Span<byte> span, double v)
    {
        int n = TryWriteDecimal(span, v);
        // "R" gives the shortest text that parses back to the same double.
        if (n == 0) v.TryFormat(span, out n, "R", CultureInfo.InvariantCulture);
        return n;
    }

    /// <summary>
    /// Sensor values mostly have a few decimals (12.3, 0.05, 18): such a value is written as the
    /// integer m / 10^k for the least k ≤ 3 with m / 10^k == v. Division is correctly rounded, so the
    /// text parses back to exactly v, and with the least k it is the same text "R" would give, at a
    /// fraction of the cost. Returns 0 when the value is not of this kind.
    /// </summary>
    private static int TryWriteDecimal(Span<byte> span, double v)
    {
        if (!(Math.Abs(v) < 1e12) || (v == 0 && double.IsNegative(v))) return 0;
        for (int k = 0; k < PowersOfTen.Length; k++)
        {
            double scale = PowersOfTen[k];
            double m = Math.Round(v * scale);
            if (m / scale != v) continue;
            long digits = (long)m;
            if (k == 0)
            {
                digits.TryFormat(span, out int whole, default, CultureInfo.InvariantCulture);
                return whole;
            }
            int n = 0;
            if (digits < 0)
            {
                span[n++] = (byte)'-';
                digits = -digits;
            }
            long unit = (long)scale;
            (digits / unit).TryFormat(span[n..], out int written, default, CultureInfo.InvariantCulture);
            n += written;
            span[n++] = (byte)'.';
            long fraction = digits % unit;
            for (long d = unit / 10; d > 0; d /= 10)
            {
                span[n++] = (byte)('0' + fraction / d);
                fraction %= d;
            }
            return n;
        }
        return 0;
    }

    private static void WriteLong(IBufferWriter<byte> buffer, long v)
    {
        var span = buffer.GetSpan(24);
        v.TryFormat(span, out int n, default, CultureInfo.InvariantCulture);
        buffer.Advance(n);
    }

    private static void WriteByte(IBufferWriter<byte> buffer, byte b)
    {
        buffer.GetSpan(1)[0] = b;
        buffer.Advance(1);
    }

    private static void WriteUtf8(IBufferWriter<byte> buffer, string s)
    {
        var span = buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(s.Length));
        buffer.Advance(Encoding.UTF8.GetBytes(s, span));
    }
}
