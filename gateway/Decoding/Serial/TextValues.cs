using System.Globalization;

namespace CityGateway.Decoding.Serial;

/// <summary>Values of text line formats (key=value, CSV): numbers, true/false, or text.</summary>
internal static class TextValues
{
    public static Reading Field(string name, string value)
    {
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return double.IsFinite(d)
                ? new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Number, Number = d }
                : Reading.Invalid("", name, QuarantineReasons.NonFinite, $"'{name}' = {Timestamps.Truncate(value)} is not a finite number");
        }
        if (value is "true" or "false") return new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Boolean, Boolean = value == "true" };
        return new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Text, Text = value };
    }

    /// <summary>Handles a device, timestamp or tag key; false when <paramref name="key"/> is an ordinary field.</summary>
    public static bool Special(Routing.TopicRoute route, string key, string value, ref string? device, ref long? ts,
        ref List<KeyValuePair<string, string>>? tags, out DecodeError? error)
    {
        error = null;
        if (key == route.DeviceField)
        {
            device = value;
            return true;
        }
        if (key == route.TimestampField)
        {
            if (!Timestamps.TryParseText(value, route.TimestampFormat, out var ns, out var e))
                error = new DecodeError(QuarantineReasons.BadTimestamp, $"'{key}': {e}");
            ts = ns;
            return true;
        }
        if (route.TagFields.Contains(key))
        {
            (tags ??= []).Add(new(key, value));
            return true;
        }
        return false;
    }
}
