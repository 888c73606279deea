using System.Buffers;
using System.Globalization;
using System.Text;

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
        WriteName(buffer, point.Measurement, measurement: true);
        foreach (var tag in point.Tags)
        {
            if (string.IsNullOrEmpty(tag.Value)) continue; // InfluxDB rejects empty tag values
            WriteByte(buffer, (byte)',');
            WriteName(buffer, tag.Key, measurement: false);
            WriteByte(buffer, (byte)'=');
            WriteName(buffer, tag.Value, measurement: false);
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

    private static void WriteDouble(IBufferWriter<byte> buffer, double v)
    {
        var span = buffer.GetSpan(32);
        // "R" gives the shortest text that parses back to the same double.
        v.TryFormat(span, out int n, "R", CultureInfo.InvariantCulture);
        buffer.Advance(n);
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
