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
        var columns = route.Columns;
        Span<byte> separator = stackalloc byte[Encoding.UTF8.GetMaxByteCount(route.Delimiter.Length)];
        separator = separator[..Encoding.UTF8.GetBytes(route.Delimiter, separator)];
        int count = separator.IsEmpty ? 1 : data.Count(separator) + 1;
        if (count != columns.Count)
            return new DecodeError(QuarantineReasons.MalformedPayload, $"expected {columns.Count} columns ({string.Join(route.Delimiter, columns)}), got {count}");
        int start = readings.Count;
        string? device = null;
        long? ts = null;
        var tags = new TagList();
        var rest = data;
        for (int i = 0; i < columns.Count; i++)
        {
            // The column count was checked above: every column but the last ends at a separator.
            int end = i < columns.Count - 1 ? rest.IndexOf(separator) : rest.Length;
            var value = rest[..end].Trim(" \t\r\n\v\f"u8);
            rest = i < columns.Count - 1 ? rest[(end + separator.Length)..] : default;
            if (value.Length == 0) continue;
            if (TextValues.Special(route, context.Names, columns[i], value, ref device, ref ts, ref tags, out var error))
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
        if (context.TopicDeviceConflict(device) is { } conflict)
        {
            readings.RemoveRange(start, readings.Count - start);
            return conflict;
        }
        device ??= context.TopicDevice;
        if (string.IsNullOrEmpty(device))
        {
            readings.RemoveRange(start, readings.Count - start);
            return new DecodeError(QuarantineReasons.MissingDeviceId, $"no value in column '{route.DeviceField}'");
        }
        JsonValues.Complete(readings, start, device, ts, tags.ToShared());
        return null;
    }
}
