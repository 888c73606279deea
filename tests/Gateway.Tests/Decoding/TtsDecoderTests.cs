using CityGateway.Decoding;
using CityGateway.Decoding.TheThingsStack;
using CityGateway.Routing;
using static CityGateway.Tests.Decoding.DecoderHarness;

namespace CityGateway.Tests.Decoding;

public class TtsDecoderTests
{
    private static readonly TtsDecoder Decoder = new();

    private const string Topic = "v3/app1@ttn/devices/dev1/up";

    private static TopicRoute Route(string deviceIdFrom = "auto") => new()
    {
        Filter = "v3/+/devices/+/up",
        Format = "tts",
        Topic = "v3/{application}/devices/{device}/up",
        DeviceIdFrom = deviceIdFrom,
    };

    /// <summary>2020-12-23T14:49:27.154035283Z, uplink_message.received_at below.</summary>
    private static readonly long InnerReceivedAt = Ns(2020, 12, 23, 14, 49, 27, 154_035_283);

    /// <summary>2020-12-23T14:49:27.212345678Z, the top-level received_at below.</summary>
    private static readonly long TopReceivedAt = Ns(2020, 12, 23, 14, 49, 27, 212_345_678);

    /// <summary>The Things Stack's documented uplink_message; the parts can be replaced or left out.</summary>
    private static string Uplink(
        string? decoded = """{"temperature":21.5,"humidity":40,"status":{"battery":3.61,"door":"closed"},"tamper":false}""",
        bool innerReceivedAt = true, bool topReceivedAt = true) => $$"""
        {
          "end_device_ids": {
            "device_id": "dev1",
            "application_ids": { "application_id": "app1" },
            "dev_eui": "0004A30B001C0530",
            "join_eui": "800000000000000C",
            "dev_addr": "00BCB929"
          },
          "correlation_ids": ["as:up:01ETAHWGVQKN1N5TNVVW0N2ABE", "gs:conn:01ETAHW7MW2YFT4N5S4AWPYRTR", "ns:uplink:01ETAHWGPTZWB6SWWWYAFNPKRA"],
          {{(topReceivedAt ? "\"received_at\": \"2020-12-23T14:49:27.212345678Z\"," : "")}}
          "uplink_message": {
            "session_key_id": "AXZ1gEbCsTvCDC1pMJo6zQ==",
            "f_port": 1,
            "f_cnt": 10,
            "frm_payload": "gkHe",
            {{(decoded is null ? "" : $"\"decoded_payload\": {decoded},")}}
            "rx_metadata": [{
              "gateway_ids": { "gateway_id": "gtw1", "eui": "9C5C8E00001A05C4" },
              "time": "2020-12-23T14:49:26.918856000Z",
              "timestamp": 2463457000,
              "rssi": -35,
              "channel_rssi": -35,
              "snr": 5.2,
              "location": { "latitude": 52.1, "longitude": 4.2, "altitude": 5, "source": "SOURCE_REGISTRY" },
              "uplink_token": "ChIKEAoEZ3R3MRII...",
              "channel_index": 2
            }],
            "settings": {
              "data_rate": { "lora": { "bandwidth": 125000, "spreading_factor": 7 } },
              "coding_rate": "4/6",
              "frequency": "868500000",
              "timestamp": 2463457000,
              "time": "2020-12-23T14:49:26.918856000Z"
            },
            {{(innerReceivedAt ? "\"received_at\": \"2020-12-23T14:49:27.154035283Z\"," : "")}}
            "consumed_airtime": "0.056576s"
          }
        }
        """;

    [Fact]
    public void Decoded_payload_gives_readings_with_the_device_id()
    {
        var readings = Ok(Decoder, Uplink(), Route(), Topic);

        Assert.Equal(["temperature", "humidity", "status.battery", "status.door", "tamper"], readings.Select(r => r.Field));
        Assert.All(readings, r => Assert.Equal("dev1", r.DeviceId));
        Assert.Equal(21.5, readings.Single("temperature").Number);
        Assert.Equal(3.61, readings.Single("status.battery").Number);
        Assert.Equal((ReadingKind.Text, "closed"), (readings.Single("status.door").Kind, readings.Single("status.door").Text));
        Assert.Equal(ReadingKind.Boolean, readings.Single("tamper").Kind);
        Assert.DoesNotContain(readings, r => r.Field is "f_cnt" or "rssi" or "snr");
    }

    [Fact]
    public void Device_is_the_dev_eui_when_the_route_says_devEui()
    {
        var readings = Ok(Decoder, Uplink(), Route("devEui"), Topic);
        Assert.All(readings, r => Assert.Equal("0004A30B001C0530", r.DeviceId));
    }

    [Fact]
    public void Device_is_the_device_id_when_the_route_says_name()
    {
        var readings = Ok(Decoder, Uplink(), Route("name"), Topic);
        Assert.All(readings, r => Assert.Equal("dev1", r.DeviceId));
    }

    [Fact]
    public void Time_is_the_uplink_received_at_to_the_nanosecond()
    {
        var readings = Ok(Decoder, Uplink(), Route(), Topic);
        Assert.All(readings, r => Assert.Equal(InnerReceivedAt, r.TimestampNs));
        Assert.Equal(1_608_734_967_154_035_283L, InnerReceivedAt);
    }

    [Fact]
    public void Time_is_the_top_level_received_at_when_the_uplink_has_none()
    {
        var readings = Ok(Decoder, Uplink(innerReceivedAt: false), Route(), Topic);
        Assert.All(readings, r => Assert.Equal(TopReceivedAt, r.TimestampNs));
    }

    [Fact]
    public void Without_any_received_at_the_readings_have_no_time()
    {
        var readings = Ok(Decoder, Uplink(innerReceivedAt: false, topReceivedAt: false), Route(), Topic);
        Assert.All(readings, r => Assert.Null(r.TimestampNs));
    }

    [Fact]
    public void Bad_received_at_is_bad_timestamp()
    {
        var payload = Uplink().Replace("2020-12-23T14:49:27.154035283Z", "not a time");
        Assert.Equal(QuarantineReasons.BadTimestamp, Fails(Decoder, payload, Route(), Topic).Reason);
    }

    [Fact]
    public void Missing_decoded_payload_is_missing_decoded_payload()
    {
        Assert.Equal(QuarantineReasons.MissingDecodedPayload, Fails(Decoder, Uplink(decoded: null), Route(), Topic).Reason);
        Assert.Equal(QuarantineReasons.MissingDecodedPayload, Fails(Decoder, Uplink(decoded: "null"), Route(), Topic).Reason);
    }

    [Fact]
    public void Join_accept_message_without_uplink_message_is_missing_decoded_payload()
    {
        const string joinAccept = """
            {
              "end_device_ids": {
                "device_id": "dev1",
                "application_ids": { "application_id": "app1" },
                "dev_eui": "0004A30B001C0530",
                "join_eui": "800000000000000C",
                "dev_addr": "00BCB929"
              },
              "correlation_ids": ["as:up:01ETAHWGVQKN1N5TNVVW0N2ABE"],
              "received_at": "2020-12-23T14:49:27.212345678Z",
              "join_accept": {
                "session_key_id": "AXZ1gEbCsTvCDC1pMJo6zQ==",
                "received_at": "2020-12-23T14:49:27.154035283Z"
              }
            }
            """;
        Assert.Equal(QuarantineReasons.MissingDecodedPayload, Fails(Decoder, joinAccept, Route(), Topic).Reason);
    }

    [Fact]
    public void Missing_end_device_ids_falls_back_to_the_topic_device()
    {
        var payload = """{"uplink_message":{"decoded_payload":{"a":1}}}""";
        var r = Assert.Single(Ok(Decoder, payload, Route(), "v3/app1@ttn/devices/dev-from-topic/up"));
        Assert.Equal("dev-from-topic", r.DeviceId);

        var route = new TopicRoute { Filter = "tts/up", Format = "tts" };
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, payload, route, "tts/up").Reason);
    }

    [Fact]
    public void Arrays_in_decoded_payload_give_invalid_readings()
    {
        var readings = Ok(Decoder, Uplink("""{"samples":[1,2],"a":1}"""), Route(), Topic);
        Assert.Equal(ReadingKind.Invalid, readings.Single("samples").Kind);
        Assert.Equal(1, readings.Single("a").Number);
    }

    [Theory]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":{"a":1,"a":2}}}""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":{"a":1},"decoded_payload":{"b":2}}}""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":{"a":1}},"uplink_message":{"decoded_payload":{"b":2}}}""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"end_device_ids":{"device_id":"dev2"},"uplink_message":{"decoded_payload":{"a":1}}}""")]
    public void Duplicate_keys_are_malformed_payload(string payload)
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, payload, Route(), Topic).Reason);
    }

    [Theory]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":{"a":1}}} x""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":{"a":1}}""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":{"decoded_payload":"AQID"}}""")]
    [InlineData("""{"end_device_ids":{"device_id":"dev1"},"uplink_message":[]}""")]
    [InlineData("""["uplink_message"]""")]
    public void Malformed_json_is_malformed_payload(string payload)
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, payload, Route(), Topic).Reason);
    }
}
