using System.Text;

namespace CityGateway.Decoding.Serial;

/// <summary>
/// One CSV line with the columns the route declares (Columns), e.g. columns
/// device,ts,count,speed_kmh,occ_pct and the line "trf-3,1795264423154,13,47.5,26.1*4F". Empty
/// values are no reading. No quoting: instruments that need it should use JSON lines.
/// </summary>
public sealed class CsvLineDecoder : IPayloadDecoder
{
    public string Format => "csv";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        var route = context.Route;
        if (LineChecksum.Verify(payload, route.Checksum, out var data) is { } bad)
            return new DecodeError(QuarantineReasons.BadChecksum, bad);
        var values = Encoding.UTF8.GetString(data).Split(route.Delimiter);
        var columns = route.Columns;
        if (values.Length != columns.Count)
            return new DecodeError(QuarantineReasons.MalformedPayload, $"expected {columns.Count} columns ({string.Join(route.Delimiter, columns)}), got {values.Length}");
        int start = readings.Count;
        string? device = null;
        long? ts = null;
        List<KeyValuePair<string, string>>? tags = null;
        for (int i = 0; i < values.Length; i++)
        {
            var value = values[i].Trim();
            if (value.Length == 0) continue;
            if (TextValues.Special(route, columns[i], value, ref device, ref ts, ref tags, out var error))
            {
                if (error is not null)
                {
                    readings.RemoveRange(start, readings.Count - start);
                    return error;
                }
                continue;
            }
            readings.Add(TextValues.Field(columns[i], value));
        }
        device ??= context.TopicDevice;
        if (string.IsNullOrEmpty(device))
        {
            readings.RemoveRange(start, readings.Count - start);
            return new DecodeError(QuarantineReasons.MissingDeviceId, $"no value in column '{route.DeviceField}'");
        }
        JsonValues.Complete(readings, start, device, ts, tags);
        return null;
    }
}
