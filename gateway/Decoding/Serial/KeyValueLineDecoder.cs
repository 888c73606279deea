using System.Text;

namespace CityGateway.Decoding.Serial;

/// <summary>
/// One line of space-separated key=value pairs, e.g. "dev=wq-07 ph=7.21 turb=0.8 t=18.4*3C". The
/// route names the device key (DeviceField), an optional timestamp key and the tag keys; a trailing
/// NMEA-style *hh checksum is checked per the route's Checksum policy.
/// </summary>
public sealed class KeyValueLineDecoder : IPayloadDecoder
{
    public string Format => "kv";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        var route = context.Route;
        if (LineChecksum.Verify(payload, route.Checksum, out var data) is { } bad)
            return new DecodeError(QuarantineReasons.BadChecksum, bad);
        int start = readings.Count;
        string? device = null;
        long? ts = null;
        var tags = new TagList();
        var seen = new SeenNames();
        var rest = data;
        while (!rest.IsEmpty)
        {
            int gap = rest.IndexOfAny((byte)' ', (byte)'\t');
            var token = gap < 0 ? rest : rest[..gap];
            rest = gap < 0 ? default : rest[(gap + 1)..];
            if (token.IsEmpty) continue;
            int eq = token.IndexOf((byte)'=');
            if (eq <= 0 || eq == token.Length - 1)
                return Fail(readings, start, $"'{Timestamps.Truncate(Encoding.UTF8.GetString(token))}' is not key=value");
            var key = context.Names.Get(token[..eq]);
            var value = token[(eq + 1)..];
            if (!seen.Add(key)) return Fail(readings, start, $"duplicate key '{Timestamps.Truncate(key)}'");
            if (TextValues.Special(route, context.Names, key, value, ref device, ref ts, ref tags, out var error))
            {
                if (error is not null)
                {
                    readings.RemoveRange(start, readings.Count - start);
                    return error;
                }
                continue;
            }
            readings.Add(TextValues.Field(key, value));
        }
        if (seen.Count == 0) return Fail(readings, start, "empty line");
        if (context.TopicDeviceConflict(device) is { } conflict)
        {
            readings.RemoveRange(start, readings.Count - start);
            return conflict;
        }
        device ??= context.TopicDevice;
        if (string.IsNullOrEmpty(device))
        {
            readings.RemoveRange(start, readings.Count - start);
            return new DecodeError(QuarantineReasons.MissingDeviceId, $"no '{route.DeviceField}=' in the line");
        }
        JsonValues.Complete(readings, start, device, ts, tags.ToShared());
        return null;
    }

    private static DecodeError Fail(List<Reading> readings, int start, string detail)
    {
        readings.RemoveRange(start, readings.Count - start);
        return new DecodeError(QuarantineReasons.MalformedPayload, detail);
    }
}
