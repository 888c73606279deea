using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace CityGateway.Simulators;

/// <summary>Writes the payload of one message in the device's format.</summary>
internal static class Payloads
{
    // Payloads go to MQTT, not into HTML: keep '+' and other characters unescaped, as the network servers do.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly long[] Frequencies = [868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000];

    public static PublishedMessage Build(Fleet fleet, SimulatedDevice device, long seq, long tsMs, double[] values)
    {
        var fields = device.Type.Fields;
        var sourceValues = new Dictionary<string, double>(fields.Count + 1) { [DeviceTypes.SequenceField] = seq };
        for (int i = 0; i < fields.Count; i++) sourceValues[fields[i].Name] = values[i];
        Dictionary<string, string>? tags = null;

        var buffer = new ArrayBufferWriter<byte>(device.Format is "json" or "senml" ? 256 : 1536);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            switch (device.Format)
            {
                case "json":
                    tags = WriteFlatJson(w, device, seq, tsMs, values);
                    break;
                case "senml":
                    WriteSenml(w, device, seq, tsMs, values);
                    break;
                case "chirpstack":
                    WriteChirpStack(w, fleet, device, seq, tsMs, values);
                    break;
                case "tts":
                    WriteTts(w, fleet, device, seq, tsMs, values);
                    break;
                default:
                    throw new InvalidOperationException($"unknown format '{device.Format}'");
            }
        }
        return new PublishedMessage
        {
            Device = device.Key,
            DeviceName = device.Id,
            DeviceType = device.Type.Name,
            Domain = device.Domain,
            Format = device.Format,
            Topic = device.Topic,
            Payload = buffer.WrittenSpan.ToArray(),
            TimestampNs = tsMs * 1_000_000,
            Sequence = seq,
            SourceValues = sourceValues,
            Tags = tags ?? new Dictionary<string, string>(),
        };
    }

    /// <summary>{"device":"trf-0001","ts":1700000000123,"seq":17,"count":12,...,"lane":"1"}</summary>
    private static Dictionary<string, string>? WriteFlatJson(Utf8JsonWriter w, SimulatedDevice d, long seq, long tsMs, double[] values)
    {
        w.WriteStartObject();
        w.WriteString("device", d.Id);
        w.WriteNumber("ts", tsMs);
        w.WriteNumber(DeviceTypes.SequenceField, seq);
        WriteFields(w, d, values);
        Dictionary<string, string>? tags = null;
        if (d.Lane is not null)
        {
            tags = new() { ["lane"] = d.Lane };
            w.WriteString("lane", d.Lane);
            if (d.Type == DeviceTypes.TrafficCamera)
            {
                tags["vehicleType"] = "all";
                w.WriteString("vehicleType", "all");
            }
        }
        w.WriteEndObject();
        return tags;
    }

    /// <summary>[{"bn":"urn:dev:city:env-0001:","bt":1700000000.123,"n":"seq","v":17},{"n":"pm25","u":"ug/m3","v":12.3},...]</summary>
    private static void WriteSenml(Utf8JsonWriter w, SimulatedDevice d, long seq, long tsMs, double[] values)
    {
        w.WriteStartArray();
        w.WriteStartObject();
        w.WriteString("bn", $"urn:dev:city:{d.Id}:");
        w.WriteNumber("bt", tsMs / 1000m);
        w.WriteString("n", DeviceTypes.SequenceField);
        w.WriteNumber("v", seq);
        w.WriteEndObject();
        var fields = d.Type.Fields;
        for (int i = 0; i < fields.Count; i++)
        {
            w.WriteStartObject();
            w.WriteString("n", fields[i].Name);
            w.WriteString("u", fields[i].Unit);
            w.WriteNumber("v", values[i]);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>A ChirpStack v4 uplink event as published on application/{id}/device/{devEui}/event/up.</summary>
    private static void WriteChirpStack(Utf8JsonWriter w, Fleet fleet, SimulatedDevice d, long seq, long tsMs, double[] values)
    {
        var rng = d.Radio;
        var time = Rfc3339Nanos(tsMs, "+00:00");
        var radio = RadioFor(fleet, rng);
        w.WriteStartObject();
        w.WriteString("deduplicationId", Identifiers.RandomGuid(rng).ToString());
        w.WriteString("time", time);
        w.WriteStartObject("deviceInfo");
        w.WriteString("tenantId", fleet.ChirpStackTenantId.ToString());
        w.WriteString("tenantName", fleet.City);
        w.WriteString("applicationId", fleet.ChirpStackApplicationId.ToString());
        w.WriteString("applicationName", fleet.ApplicationName);
        w.WriteString("deviceProfileId", Identifiers.GuidFor("chirpstack-profile:" + d.Type.Name).ToString());
        w.WriteString("deviceProfileName", d.Type.Name);
        w.WriteString("deviceName", d.Id);
        w.WriteString("devEui", d.DevEui);
        w.WriteString("deviceClassEnabled", "CLASS_A");
        w.WriteStartObject("tags");
        w.WriteString("domain", d.Domain);
        w.WriteString("district", d.District);
        w.WriteString("site", d.Site);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteString("devAddr", d.DevAddr);
        w.WriteBoolean("adr", true);
        w.WriteNumber("dr", 12 - radio.SpreadingFactor);
        w.WriteNumber("fCnt", seq);
        w.WriteNumber("fPort", d.Type.FPort);
        w.WriteBoolean("confirmed", false);
        w.WriteBase64String("data", FramePayload(d, seq, values));
        w.WriteStartObject("object");
        WriteFields(w, d, values);
        w.WriteNumber(DeviceTypes.SequenceField, seq);
        w.WriteEndObject();
        w.WriteStartArray("rxInfo");
        w.WriteStartObject();
        w.WriteString("gatewayId", radio.GatewayEui.ToLowerInvariant());
        w.WriteNumber("uplinkId", (uint)rng.Next());
        w.WriteString("gwTime", time);
        w.WriteString("nsTime", Rfc3339Nanos(tsMs + 4, "+00:00"));
        w.WriteNumber("rssi", radio.Rssi);
        w.WriteNumber("snr", radio.Snr);
        w.WriteNumber("channel", radio.Channel);
        w.WriteStartObject("location");
        w.WriteNumber("latitude", radio.Latitude);
        w.WriteNumber("longitude", radio.Longitude);
        w.WriteEndObject();
        w.WriteBase64String("context", BitConverter.GetBytes(rng.Next()));
        w.WriteStartObject("metadata");
        w.WriteString("region_config_id", "eu868");
        w.WriteString("region_common_name", "EU868");
        w.WriteEndObject();
        w.WriteString("crcStatus", "CRC_OK");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartObject("txInfo");
        w.WriteNumber("frequency", radio.Frequency);
        w.WriteStartObject("modulation");
        w.WriteStartObject("lora");
        w.WriteNumber("bandwidth", 125000);
        w.WriteNumber("spreadingFactor", radio.SpreadingFactor);
        w.WriteString("codeRate", "CR_4_5");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A The Things Stack v3 uplink message as published on v3/{app}@{tenant}/devices/{id}/up.</summary>
    private static void WriteTts(Utf8JsonWriter w, Fleet fleet, SimulatedDevice d, long seq, long tsMs, double[] values)
    {
        var rng = d.Radio;
        var time = Rfc3339Nanos(tsMs, "Z");
        var radio = RadioFor(fleet, rng);
        uint concentratorTs = unchecked((uint)(tsMs * 1000));
        var frame = FramePayload(d, seq, values);
        w.WriteStartObject();
        w.WriteStartObject("end_device_ids");
        w.WriteString("device_id", d.Id);
        w.WriteStartObject("application_ids");
        w.WriteString("application_id", fleet.ApplicationName);
        w.WriteEndObject();
        w.WriteString("dev_eui", d.DevEui.ToUpperInvariant());
        w.WriteString("join_eui", fleet.JoinEui.ToUpperInvariant());
        w.WriteString("dev_addr", d.DevAddr.ToUpperInvariant());
        w.WriteEndObject();
        w.WriteStartArray("correlation_ids");
        w.WriteStringValue("as:up:" + Identifiers.Ulid(tsMs, rng));
        w.WriteStringValue("gs:uplink:" + Identifiers.Ulid(tsMs, rng));
        w.WriteStringValue("ns:uplink:" + Identifiers.Ulid(tsMs, rng));
        w.WriteStringValue("rpc:/ttn.lorawan.v3.GsNs/HandleUplink:" + Identifiers.Ulid(tsMs, rng));
        w.WriteEndArray();
        w.WriteString("received_at", time);
        w.WriteStartObject("uplink_message");
        w.WriteBase64String("session_key_id", Identifiers.GuidFor("session:" + d.Id).ToByteArray());
        w.WriteNumber("f_port", d.Type.FPort);
        w.WriteNumber("f_cnt", seq);
        w.WriteBase64String("frm_payload", frame);
        w.WriteStartObject("decoded_payload");
        WriteFields(w, d, values);
        w.WriteNumber(DeviceTypes.SequenceField, seq);
        w.WriteEndObject();
        w.WriteStartArray("rx_metadata");
        w.WriteStartObject();
        w.WriteStartObject("gateway_ids");
        w.WriteString("gateway_id", radio.GatewayId);
        w.WriteString("eui", radio.GatewayEui.ToUpperInvariant());
        w.WriteEndObject();
        w.WriteString("time", time);
        w.WriteNumber("timestamp", concentratorTs);
        w.WriteNumber("rssi", radio.Rssi);
        w.WriteNumber("channel_rssi", radio.Rssi);
        w.WriteNumber("snr", radio.Snr);
        w.WriteStartObject("location");
        w.WriteNumber("latitude", radio.Latitude);
        w.WriteNumber("longitude", radio.Longitude);
        w.WriteNumber("altitude", radio.Altitude);
        w.WriteString("source", "SOURCE_REGISTRY");
        w.WriteEndObject();
        w.WriteBase64String("uplink_token", BitConverter.GetBytes(rng.NextInt64()));
        w.WriteString("received_at", time);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartObject("settings");
        w.WriteStartObject("data_rate");
        w.WriteStartObject("lora");
        w.WriteNumber("bandwidth", 125000);
        w.WriteNumber("spreading_factor", radio.SpreadingFactor);
        w.WriteString("coding_rate", "4/5");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteString("frequency", radio.Frequency.ToString(CultureInfo.InvariantCulture));
        w.WriteNumber("timestamp", concentratorTs);
        w.WriteString("time", time);
        w.WriteEndObject();
        w.WriteString("received_at", time);
        w.WriteString("consumed_airtime", AirtimeSeconds(radio.SpreadingFactor, frame.Length + 13).ToString("0.000000", CultureInfo.InvariantCulture) + "s");
        w.WriteStartObject("network_ids");
        w.WriteString("net_id", "000013");
        w.WriteString("tenant_id", Fleet.TtsTenant);
        w.WriteString("cluster_id", "eu1");
        w.WriteString("cluster_address", "eu1.cloud.thethings.network");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteFields(Utf8JsonWriter w, SimulatedDevice d, double[] values)
    {
        var fields = d.Type.Fields;
        for (int i = 0; i < fields.Count; i++) w.WriteNumber(fields[i].Name, values[i]);
    }

    /// <summary>The raw LoRaWAN application payload: sequence (uint16) then each value as a scaled int32, big-endian.</summary>
    private static byte[] FramePayload(SimulatedDevice d, long seq, double[] values)
    {
        var bytes = new byte[2 + 4 * values.Length];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, unchecked((ushort)seq));
        for (int i = 0; i < values.Length; i++)
        {
            double scaled = Math.Round(values[i] * Math.Pow(10, d.Type.Fields[i].Decimals));
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(2 + 4 * i), (int)Math.Clamp(scaled, int.MinValue, int.MaxValue));
        }
        return bytes;
    }

    /// <summary>RFC 3339 UTC time with nine fractional digits, as the LoRaWAN network servers write it.</summary>
    private static string Rfc3339Nanos(long unixMs, string zone) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture)
        + "000000" + zone;

    private readonly record struct Radio(string GatewayId, string GatewayEui, double Latitude, double Longitude, int Altitude,
        int Rssi, double Snr, int Channel, long Frequency, int SpreadingFactor);

    /// <summary>Picks one of three city gateways and plausible reception parameters.</summary>
    private static Radio RadioFor(Fleet fleet, Random rng)
    {
        int gw = rng.Next(3);
        int channel = rng.Next(Frequencies.Length);
        int sf = 7 + rng.Next(4);
        int rssi = -60 - rng.Next(55);
        double snr = Math.Round(10 - (-60 - rssi) * 0.25 + rng.NextDouble() * 2, 1);
        var (lat, lon) = fleet.Map.Near((gw - 1) * 0.02, (gw - 1) * 0.025, 5);
        return new Radio(
            $"{fleet.City.ToLowerInvariant()}-gw-{gw + 1:D2}",
            Identifiers.DevEuiFor($"gateway:{fleet.City}:{gw}"),
            lat,
            lon,
            40 + 15 * gw,
            rssi, snr, channel, Frequencies[channel], sf);
    }

    /// <summary>LoRa time on air (125 kHz, coding rate 4/5, explicit header, CRC on).</summary>
    private static double AirtimeSeconds(int sf, int phyPayloadBytes)
    {
        double tSym = Math.Pow(2, sf) / 125_000.0;
        bool lowDr = sf >= 11;
        double payloadSymbols = 8 + Math.Max(Math.Ceiling((8.0 * phyPayloadBytes - 4 * sf + 28 + 16) / (4 * (sf - (lowDr ? 2 : 0)))) * 5, 0);
        return (12.25 + payloadSymbols) * tSym;
    }
}
