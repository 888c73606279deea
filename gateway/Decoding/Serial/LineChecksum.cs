using CityGateway.Routing;

namespace CityGateway.Decoding.Serial;

/// <summary>
/// NMEA-style line checksum: "*" and two hex digits at the end of the line, the XOR of every byte
/// before the "*" (after a leading "$", when the line has one).
/// </summary>
public static class LineChecksum
{
    public static byte Compute(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0 && data[0] == (byte)'$') data = data[1..];
        byte x = 0;
        foreach (var b in data) x ^= b;
        return x;
    }

    /// <summary>Appends "*hh" for <paramref name="line"/> (without delimiter).</summary>
    public static string Append(string line)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(line);
        return line + "*" + Compute(bytes).ToString("X2");
    }

    /// <summary>
    /// Checks and strips the checksum. Returns the data part in <paramref name="data"/>, or an error
    /// text when the policy is not met.
    /// </summary>
    public static string? Verify(ReadOnlySpan<byte> line, ChecksumPolicy policy, out ReadOnlySpan<byte> data)
    {
        data = line;
        if (policy == ChecksumPolicy.None) return null;
        bool has = line.Length >= 3 && line[^3] == (byte)'*' && IsHex(line[^2]) && IsHex(line[^1]);
        if (!has) return policy == ChecksumPolicy.Required ? "the line has no *hh checksum" : null;
        data = line[..^3];
        byte expected = (byte)(Hex(line[^2]) << 4 | Hex(line[^1]));
        byte actual = Compute(data);
        return actual == expected ? null : $"checksum *{expected:X2} does not match the line (computed {actual:X2})";
    }

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'A' and <= (byte)'F' or >= (byte)'a' and <= (byte)'f';

    private static int Hex(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
}
