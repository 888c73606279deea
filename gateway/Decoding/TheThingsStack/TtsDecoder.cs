using System.Text.Json;

namespace CityGateway.Decoding.TheThingsStack;

/// <summary>
/// The Things Stack v3 uplink messages (topic v3/{application}@{tenant}/devices/{device}/up): device
/// under "end_device_ids" (device_id, dev_eui), decoded fields under
/// "uplink_message.decoded_payload", time from "uplink_message.received_at" or the top-level
/// "received_at". Without "decoded_payload" (no payload formatter) the uplink is quarantined whole.
/// </summary>
public sealed class TtsDecoder : IPayloadDecoder
{
    public string Format => "tts";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        int start = readings.Count;
        string? deviceId = null, devEui = null;
        long? topTime = null, uplinkTime = null;
        bool hasUplink = false, hasDecoded = false;
        try
        {
            var reader = new Utf8JsonReader(payload, JsonValues.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return new DecodeError(QuarantineReasons.MalformedPayload, "expected a JSON object (The Things Stack uplink)");
            var seen = new SeenNames();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = context.Names.Get(ref reader);
                reader.Read();
                if (!seen.Add(key)) throw new JsonException($"duplicate key '{key}'");
                switch (key)
                {
                    case "end_device_ids":
                        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("'end_device_ids' must be an object");
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var k = context.Names.Get(ref reader);
                            reader.Read();
                            if (k == "device_id") deviceId = JsonValues.ReadScalarText(ref reader, context.Names);
                            else if (k == "dev_eui") devEui = JsonValues.ReadScalarText(ref reader, context.Names);
                            else reader.Skip();
                        }
                        break;
                    case "received_at":
                        topTime = ReadTime(ref reader, key);
                        break;
                    case "uplink_message":
                        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("'uplink_message' must be an object");
                        hasUplink = true;
                        var seenInner = new SeenNames();
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var k = context.Names.Get(ref reader);
                            reader.Read();
                            if (!seenInner.Add(k)) throw new JsonException($"duplicate key 'uplink_message.{k}'");
                            if (k == "decoded_payload" && reader.TokenType == JsonTokenType.StartObject)
                            {
                                hasDecoded = true;
                                JsonValues.ReadObject(ref reader, "", readings, context.Names);
                            }
                            else if (k == "decoded_payload" && reader.TokenType != JsonTokenType.Null)
                                throw new JsonException("'decoded_payload' must be a JSON object");
                            else if (k == "received_at") uplinkTime = ReadTime(ref reader, k);
                            else reader.Skip();
                        }
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
            JsonValues.ExpectEnd(ref reader);
        }
        catch (TimestampException e)
        {
            return Fail(readings, start, QuarantineReasons.BadTimestamp, e.Message);
        }
        // Utf8JsonReader throws InvalidOperationException when a value is read as the wrong token type.
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail(readings, start, QuarantineReasons.MalformedPayload, e.Message);
        }
        if (!hasUplink)
            return Fail(readings, start, QuarantineReasons.MissingDecodedPayload, "not an uplink: no 'uplink_message'");
        if (!hasDecoded)
            return Fail(readings, start, QuarantineReasons.MissingDecodedPayload,
                "uplink has no 'uplink_message.decoded_payload' (is a payload formatter configured?)");
        // The Things Stack's topic level is the device id, whichever id names the device.
        if (context.TopicDeviceConflict(deviceId) is { } conflict)
            return Fail(readings, start, conflict.Reason, conflict.Detail);
        var device = context.Route.DeviceIdFrom == "devEui" ? devEui : deviceId;
        device ??= context.TopicDevice;
        if (string.IsNullOrEmpty(device))
            return Fail(readings, start, QuarantineReasons.MissingDeviceId, "uplink has no end_device_ids.device_id");
        JsonValues.Complete(readings, start, device, uplinkTime ?? topTime, null);
        return null;
    }

    private static long? ReadTime(ref Utf8JsonReader reader, string key)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (!Timestamps.TryRead(ref reader, "iso8601", out var ns, out var err))
            throw new TimestampException($"'{key}': {err}");
        return ns;
    }

    private sealed class TimestampException(string message) : Exception(message);

    private static DecodeError Fail(List<Reading> readings, int start, string reason, string detail)
    {
        readings.RemoveRange(start, readings.Count - start);
        return new DecodeError(reason, detail);
    }
}
