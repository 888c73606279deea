using System.Text.Json;

namespace CityGateway.Decoding.ChirpStack;

/// <summary>
/// ChirpStack v4 uplink events (topic application/{applicationId}/device/{devEui}/event/up): the
/// decoded fields are under "object", the device under "deviceInfo" (devEui, deviceName), the
/// network server's receive time under "time". An uplink without "object" has no decoded payload
/// (no codec configured for the device profile) and is quarantined whole.
/// </summary>
public sealed class ChirpStackDecoder : IPayloadDecoder
{
    public string Format => "chirpstack";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        int start = readings.Count;
        string? devEui = null, deviceName = null;
        long? ts = null;
        bool hasObject = false;
        try
        {
            var reader = new Utf8JsonReader(payload, JsonValues.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return new DecodeError(QuarantineReasons.MalformedPayload, "expected a JSON object (ChirpStack uplink event)");
            var seen = new SeenNames();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = context.Names.Get(ref reader);
                reader.Read();
                if (!seen.Add(key)) throw new JsonException($"duplicate key '{key}'");
                switch (key)
                {
                    case "deviceInfo":
                        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("'deviceInfo' must be an object");
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var k = context.Names.Get(ref reader);
                            reader.Read();
                            if (k == "devEui") devEui = JsonValues.ReadScalarText(ref reader, context.Names);
                            else if (k == "deviceName") deviceName = JsonValues.ReadScalarText(ref reader, context.Names);
                            else reader.Skip();
                        }
                        break;
                    case "time":
                        if (reader.TokenType == JsonTokenType.Null) break;
                        if (!Timestamps.TryRead(ref reader, "iso8601", out var ns, out var err))
                            return Fail(readings, start, QuarantineReasons.BadTimestamp, $"'time': {err}");
                        ts = ns;
                        break;
                    case "object":
                        if (reader.TokenType == JsonTokenType.Null) break;
                        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("'object' must be a JSON object");
                        hasObject = true;
                        JsonValues.ReadObject(ref reader, "", readings, context.Names);
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
            JsonValues.ExpectEnd(ref reader);
        }
        // Utf8JsonReader throws InvalidOperationException when a value is read as the wrong token type.
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail(readings, start, QuarantineReasons.MalformedPayload, e.Message);
        }
        if (!hasObject)
            return Fail(readings, start, QuarantineReasons.MissingDecodedPayload,
                "uplink has no decoded 'object' (is a payload codec configured for the device profile?)");
        // ChirpStack's topic level is the DevEUI (hexadecimal, in either case), whichever id names the device.
        if (context.TopicDeviceConflict(devEui, StringComparison.OrdinalIgnoreCase) is { } conflict)
            return Fail(readings, start, conflict.Reason, conflict.Detail);
        var device = context.Route.DeviceIdFrom == "name" ? deviceName : devEui;
        device ??= context.TopicDevice;
        if (string.IsNullOrEmpty(device))
            return Fail(readings, start, QuarantineReasons.MissingDeviceId,
                context.Route.DeviceIdFrom == "name" ? "uplink has no deviceInfo.deviceName" : "uplink has no deviceInfo.devEui");
        JsonValues.Complete(readings, start, device, ts, null);
        return null;
    }

    private static DecodeError Fail(List<Reading> readings, int start, string reason, string detail)
    {
        readings.RemoveRange(start, readings.Count - start);
        return new DecodeError(reason, detail);
    }
}
