using System.Text.Json;

namespace CityGateway.Decoding.Json;

/// <summary>
/// Flat JSON objects: {"device": "env-0001", "ts": 1700000000000, "pm25": 12.1, "temp_f": 71.2}.
/// The device and timestamp keys and the tag keys come from the route.
/// </summary>
public sealed class FlatJsonDecoder : IPayloadDecoder
{
    public string Format => "json";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        var route = context.Route;
        int start = readings.Count;
        string? device = null;
        long? ts = null;
        var tags = new TagList();
        try
        {
            var reader = new Utf8JsonReader(payload, JsonValues.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return new DecodeError(QuarantineReasons.MalformedPayload, "expected a JSON object");
            var seen = new SeenNames();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = context.Names.Get(ref reader);
                reader.Read();
                if (!seen.Add(name)) throw new JsonException($"duplicate key '{name}'");
                if (name == route.DeviceField)
                {
                    device = JsonValues.ReadScalarText(ref reader, context.Names);
                }
                else if (name == route.TimestampField)
                {
                    if (reader.TokenType == JsonTokenType.Null) continue;
                    if (!Timestamps.TryRead(ref reader, route.TimestampFormat, out var ns, out var error))
                    {
                        readings.RemoveRange(start, readings.Count - start);
                        return new DecodeError(QuarantineReasons.BadTimestamp, $"'{name}': {error}");
                    }
                    ts = ns;
                }
                else if (route.TagFields.Contains(name))
                {
                    tags.Add(name, JsonValues.ReadScalarText(ref reader, context.Names));
                }
                else
                {
                    JsonValues.ReadField(ref reader, name, readings, context.Names);
                }
            }
            JsonValues.ExpectEnd(ref reader);
        }
        catch (JsonException e)
        {
            readings.RemoveRange(start, readings.Count - start);
            return new DecodeError(QuarantineReasons.MalformedPayload, e.Message);
        }
        // Utf8JsonReader throws InvalidOperationException when a value is read as the wrong token type.
        catch (InvalidOperationException e)
        {
            readings.RemoveRange(start, readings.Count - start);
            return new DecodeError(QuarantineReasons.MalformedPayload, e.Message);
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
            return new DecodeError(QuarantineReasons.MissingDeviceId,
                $"no device id: neither key '{route.DeviceField}' in the payload nor {{device}} in the route's topic template");
        }
        JsonValues.Complete(readings, start, device, ts, tags.ToShared());
        return null;
    }
}
