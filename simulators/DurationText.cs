using System.Globalization;

namespace CityGateway.Simulators;

/// <summary>
/// Durations as people write them on a command line: units in decreasing order, each at most once
/// ("2h", "90m", "1h30m", "1d12h", "1.5h", "45s"), or a clock time "h:mm:ss" / "d.hh:mm:ss"
/// ("00:45:00"). A bare number is refused: it does not say whether it means seconds or minutes.
/// </summary>
public static class DurationText
{
    private static readonly string[] ClockFormats = [@"h\:mm\:ss", @"hh\:mm\:ss", @"d\.h\:mm\:ss", @"d\.hh\:mm\:ss"];
    private static readonly TimeSpan Longest = TimeSpan.FromDays(3650);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says why (without the option's name).</summary>
    public static bool TryParse(string? text, out TimeSpan value, out string error)
    {
        value = default;
        var s = text?.Trim() ?? "";
        if (s.Length == 0) { error = "expects a duration such as 2h, 90m, 1h30m or 00:45:00, not ''"; return false; }
        if (s.Contains(':'))
        {
            if (TimeSpan.TryParseExact(s, ClockFormats, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero)
            {
                error = "";
                return true;
            }
            error = $"expects a clock duration h:mm:ss or d.hh:mm:ss, not '{s}'";
            return false;
        }

        const string units = "dhms";
        int lastUnit = -1, i = 0;
        decimal totalSeconds = 0;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            if (i == start || i == s.Length)
            {
                error = i == start
                    ? $"expects a duration such as 2h, 90m, 1h30m or 00:45:00, not '{s}'"
                    : start == 0
                        ? $"needs a unit (d, h, m or s), as in {s}s or {s}m, not '{s}'"
                        : $"needs a unit (d, h, m or s) after '{s[start..]}' in '{s}'";
                return false;
            }
            int unit = units.IndexOf(char.ToLowerInvariant(s[i]));
            if (unit < 0 || unit <= lastUnit
                || !decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
            {
                error = $"expects a duration such as 2h, 90m, 1h30m or 00:45:00 (units d, h, m, s, largest first, each once), not '{s}'";
                return false;
            }
            totalSeconds += n * unit switch { 0 => 86400m, 1 => 3600m, 2 => 60m, _ => 1m };
            if (totalSeconds > (decimal)Longest.TotalSeconds) { error = $"is too long: '{s}'"; return false; }
            lastUnit = unit;
            i++;
        }
        value = TimeSpan.FromTicks((long)Math.Round(totalSeconds * TimeSpan.TicksPerSecond));
        error = "";
        return true;
    }

    /// <summary>Writes <paramref name="value"/> the way <see cref="TryParse"/> reads it: 7d, 1h30m, 45s, 1.5s.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero) return "0s";
        var c = CultureInfo.InvariantCulture;
        var sign = value < TimeSpan.Zero ? "-" : "";
        if (value < TimeSpan.Zero) value = value.Duration();
        var parts = new List<string>(4);
        if (value.Days > 0) parts.Add(value.Days.ToString(c) + "d");
        if (value.Hours > 0) parts.Add(value.Hours.ToString(c) + "h");
        if (value.Minutes > 0) parts.Add(value.Minutes.ToString(c) + "m");
        double seconds = value.Seconds + (value.Ticks % TimeSpan.TicksPerSecond) / (double)TimeSpan.TicksPerSecond;
        if (seconds > 0) parts.Add(seconds.ToString("0.###", c) + "s");
        return sign + string.Concat(parts);
    }
}
