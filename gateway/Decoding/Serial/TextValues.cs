using System.Globalization;
using System.Text;
using CityGateway.Core;

namespace CityGateway.Decoding.Serial;

/// <summary>Values of text line formats (key=value, CSV): numbers, true/false, or text.</summary>
internal static class TextValues
{
    public static Reading Field(string name, ReadOnlySpan<byte> value)
    {
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return double.IsFinite(d)
                ? new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Number, Number = d }
                : Reading.Invalid("", name, QuarantineReasons.NonFinite, $"'{name}' = {Timestamps.Truncate(Encoding.UTF8.GetString(value))} is not a finite number");
        }
        if (value.SequenceEqual("true"u8) || value.SequenceEqual("false"u8))
            return new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Boolean, Boolean = value[0] == (byte)'t' };
        return new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Text, Text = Encoding.UTF8.GetString(value) };
    }

    /// <summary>Handles a device, timestamp or tag key; false when <paramref name="key"/> is an ordinary field.</summary>
    public static bool Special(Routing.TopicRoute route, StringPool names, string key, ReadOnlySpan<byte> value, ref string? device, ref long? ts,
        ref TagList tags, out DecodeError? error)
    {
        error = null;
        if (key == route.DeviceField)
        {
            device = names.Get(value);
            return true;
        }
        if (key == route.TimestampField)
        {
            if (!Timestamps.TryParseText(Encoding.UTF8.GetString(value), route.TimestampFormat, out var ns, out var e))
                error = new DecodeError(QuarantineReasons.BadTimestamp, $"'{key}': {e}");
            ts = ns;
            return true;
        }
        if (route.TagFields.Contains(key))
        {
            tags.Add(key, names.Get(value));
            return true;
        }
        return false;
    }
}
