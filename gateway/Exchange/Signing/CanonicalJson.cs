using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// The JSON Canonicalization Scheme (RFC 8785, "JCS"): one byte form per JSON value, so that a
/// signature or a hash over a value does not depend on how the value was written or built.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>UTF-8 without a byte order mark, no whitespace between tokens.</item>
/// <item>Object members sorted by name, comparing the names as arrays of UTF-16 code units
/// (<see cref="string.CompareOrdinal(string, string)"/>); array elements stay in order.</item>
/// <item>Strings escaped minimally: <c>\"</c>, <c>\\</c>, <c>\b \t \n \f \r</c>, other characters
/// below U+0020 as <c>\u00xx</c> (lower-case hex); everything else as itself, including <c>/</c>
/// and non-ASCII characters. A string that is not valid Unicode (a lone surrogate) is rejected.</item>
/// <item>Numbers are IEEE 754 doubles written as ECMAScript's <c>Number.prototype.toString</c>
/// does: the shortest digits that read back to the same double, plain notation for decimal
/// exponents from -6 to 20, otherwise <c>d.ddde+x</c> / <c>d.ddde-x</c>; <c>-0</c> is written
/// <c>0</c>. NaN and infinities are rejected. Every JSON number is read as a double first, so an
/// integer beyond 2^53 loses precision exactly as RFC 8785 prescribes; values that must keep more
/// digits belong in strings.</item>
/// <item>Duplicate member names are rejected (RFC 8785 requires I-JSON input).</item>
/// </list>
/// Invalid input raises <see cref="ArgumentException"/> (or a <see cref="JsonException"/> from
/// System.Text.Json when a node cannot be written at all).
/// </remarks>
public static class CanonicalJson
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The canonical bytes of a node; <c>null</c> stands for the JSON literal <c>null</c>.</summary>
    public static byte[] Serialize(JsonNode? node)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        WriteNode(buffer, node);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The canonical bytes of a parsed element.</summary>
    public static byte[] Serialize(JsonElement element)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        WriteElement(buffer, element);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The canonical form as a string (the UTF-8 bytes decoded), for logs and tests.</summary>
    public static string SerializeToString(JsonNode? node) => Encoding.UTF8.GetString(Serialize(node));

    private static void WriteNode(IBufferWriter<byte> output, JsonNode? node)
    {
        switch (node)
        {
            case null:
                WriteAscii(output, "null");
                break;
            case JsonObject obj:
            {
                var members = new List<KeyValuePair<string, JsonNode?>>(obj.Count);
                foreach (var member in obj) members.Add(member);
                members.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
                WriteByte(output, (byte)'{');
                for (int i = 0; i < members.Count; i++)
                {
                    if (i > 0) WriteByte(output, (byte)',');
                    WriteString(output, members[i].Key);
                    WriteByte(output, (byte)':');
                    WriteNode(output, members[i].Value);
                }
                WriteByte(output, (byte)'}');
                break;
            }
            case JsonArray array:
                WriteByte(output, (byte)'[');
                for (int i = 0; i < array.Count; i++)
                {
                    if (i > 0) WriteByte(output, (byte)',');
                    WriteNode(output, array[i]);
                }
                WriteByte(output, (byte)']');
                break;
            case JsonValue value:
                if (value.TryGetValue<JsonElement>(out var element))
                {
                    WriteElement(output, element);
                }
                else if (value.TryGetValue<string>(out var text))
                {
                    WriteString(output, text); // directly: a lone surrogate is refused, not replaced
                }
                else if (value.TryGetValue<double>(out var number))
                {
                    WriteAscii(output, FormatNumber(number));
                }

                else
                {
                    // A value wrapping a CLR object (int, decimal, string, DateTime, ...): take the
                    // JSON that System.Text.Json writes for it and canonicalise that.
                    using var doc = JsonDocument.Parse(value.ToJsonString());
                    WriteElement(output, doc.RootElement);
                }
                break;
            default:
                throw new ArgumentException($"Unsupported JSON node type {node.GetType().Name}.");
        }
    }

    private static void WriteElement(IBufferWriter<byte> output, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var members = new List<JsonProperty>();
                foreach (var p in element.EnumerateObject()) members.Add(p);
                members.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
                WriteByte(output, (byte)'{');
                for (int i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        if (string.Equals(members[i - 1].Name, members[i].Name, StringComparison.Ordinal))
                            throw new ArgumentException($"Duplicate member name \"{members[i].Name}\" in a JSON object.");
                        WriteByte(output, (byte)',');
                    }
                    WriteString(output, members[i].Name);
                    WriteByte(output, (byte)':');
                    WriteElement(output, members[i].Value);
                }
                WriteByte(output, (byte)'}');
                break;
            }
            case JsonValueKind.Array:
            {
                bool first = true;
                WriteByte(output, (byte)'[');
                foreach (var item in element.EnumerateArray())
                {
                    if (!first) WriteByte(output, (byte)',');
                    first = false;
                    WriteElement(output, item);
                }
                WriteByte(output, (byte)']');
                break;
            }
            case JsonValueKind.String:
                string s;
                try { s = element.GetString()!; }
                catch (InvalidOperationException e) { throw new ArgumentException("A JSON string is not valid Unicode.", e); }
                WriteString(output, s);
                break;
            case JsonValueKind.Number:
                // double.Parse rounds to nearest like ECMAScript; out-of-range values become infinities.
                var raw = element.GetRawText();
                if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                    throw new ArgumentException($"The JSON number {raw} cannot be read as a double.");
                WriteAscii(output, FormatNumber(d));
                break;
            case JsonValueKind.True:
                WriteAscii(output, "true");
                break;
            case JsonValueKind.False:
                WriteAscii(output, "false");
                break;
            case JsonValueKind.Null:
                WriteAscii(output, "null");
                break;
            default:
                throw new ArgumentException($"Unsupported JSON value kind {element.ValueKind}.");
        }
    }

    /// <summary>
    /// A double as ECMAScript's <c>Number.prototype.toString</c> writes it (ECMA-262, Number::toString),
    /// which RFC 8785 section 3.2.2.3 adopts: 1e+21, 1e-7, 0.000001, 4.5, 333333333.3333333, 0 for -0.
    /// </summary>
    public static string FormatNumber(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
            throw new ArgumentException("NaN and infinities have no JSON form.", nameof(value));
        if (value == 0) return "0"; // also -0

        // "R" gives the shortest digits that round-trip (closest to the value when several do),
        // the same digit choice as ECMAScript: e.g. "1E+21", "1.7976931348623157E+308", "4.5", "1E-07".
        var r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        int ePos = r.IndexOfAny(['E', 'e']);
        var mantissa = ePos < 0 ? r : r[..ePos];
        int exp10 = ePos < 0 ? 0 : int.Parse(r.AsSpan(ePos + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        int dot = mantissa.IndexOf('.');
        string intPart = dot < 0 ? mantissa : mantissa[..dot];
        string fracPart = dot < 0 ? "" : mantissa[(dot + 1)..];

        // value = 0.digits × 10^n with digits free of leading and trailing zeros (k of them).
        var all = intPart + fracPart;
        int lead = 0;
        while (lead < all.Length && all[lead] == '0') lead++;
        var digits = all[lead..].TrimEnd('0');
        int k = digits.Length;
        int n = intPart.Length - lead + exp10;

        var sb = new StringBuilder(32);
        if (value < 0) sb.Append('-');
        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            int e = n - 1;
            sb.Append(digits[0]);
            if (k > 1) sb.Append('.').Append(digits, 1, k - 1);
            sb.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e).ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static void WriteString(IBufferWriter<byte> output, string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\t': sb.Append("\\t"); break;
                case '\n': sb.Append("\\n"); break;
                case '\f': sb.Append("\\f"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (c < 0x20) sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
        byte[] bytes;
        try { bytes = StrictUtf8.GetBytes(sb.ToString()); }
        catch (EncoderFallbackException e) { throw new ArgumentException("A JSON string is not valid Unicode (lone surrogate).", e); }
        output.Write(bytes);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string ascii)
    {
        var span = output.GetSpan(ascii.Length);
        for (int i = 0; i < ascii.Length; i++) span[i] = (byte)ascii[i];
        output.Advance(ascii.Length);
    }

    private static void WriteByte(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }
}
