using CityGateway.Decoding;
using CityGateway.Decoding.ChirpStack;
using CityGateway.Routing;
using static CityGateway.Tests.Decoding.DecoderHarness;

namespace CityGateway.Tests.Decoding;

public class ChirpStackDecoderTests
{
    private static readonly ChirpStackDecoder Decoder = new();

    private const string Topic = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up";

    private static TopicRoute Route(string deviceIdFrom = "auto") => new()
    {
        Filter = "application/+/device/+/event/up",
        Format = "chirpstack",
        Topic = "application/{application}/device/{device}/event/up",
        DeviceIdFrom = deviceIdFrom,
    };

    /// <summary>ChirpStack v4's documented "up" event, with <paramref name="obj"/> as the decoded payload
    /// (null leaves the key out).</summary>
    private static string Uplink(string? obj = """{"temperature":21.5,"humidity":40,"alarm":false,"door":"open"}""",
        string deviceInfo = DeviceInfo) => $$"""
        {
          "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
          "time": "2022-07-18T09:34:15.775023242+00:00",
          {{(deviceInfo.Length > 0 ? $"\"deviceInfo\": {deviceInfo}," : "")}}
          "devAddr": "00189440",
          "adr": true,
          "dr": 1,
          "fCnt": 4,
          "fPort": 1,
          "confirmed": false,
          "data": "AQID",
          {{(obj is null ? "" : $"\"object\": {obj},")}}
          "rxInfo": [
            {
              "gatewayId": "0016c001f153a14c",
              "uplinkId": 4217106255,
              "rssi": -36,
              "snr": 10.5,
              "context": "E3OWOQ==",
              "metadata": { "region_name": "eu868", "region_common_name": "EU868" }
            }
          ],
          "txInfo": {
            "frequency": 868100000,
            "modulation": { "lora": { "bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5" } }
          }
        }
        """;

    private const string DeviceInfo = """
        {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "applicationName": "Test application",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": "Test device-profile",
            "deviceName": "Test device",
            "devEui": "0101010101010101",
            "tags": { "site": "depot" }
          }
        """;

    [Fact]
    public void Uplink_readings_come_from_object_with_the_devEui_as_device()
    {
        var readings = Ok(Decoder, Uplink(), Route(), Topic);

        Assert.Equal(4, readings.Count);
        Assert.All(readings, r => Assert.Equal("0101010101010101", r.DeviceId));
        var t = readings.Single("temperature");
        Assert.Equal((ReadingKind.Number, 21.5), (t.Kind, t.Number));
        Assert.Null(t.Unit);
        Assert.Equal(40, readings.Single("humidity").Number);
        var alarm = readings.Single("alarm");
        Assert.Equal(ReadingKind.Boolean, alarm.Kind);
        Assert.False(alarm.Boolean);
        var door = readings.Single("door");
        Assert.Equal((ReadingKind.Text, "open"), (door.Kind, door.Text));
        // Nothing outside "object" becomes a reading.
        Assert.DoesNotContain(readings, r => r.Field is "fCnt" or "rssi" or "dr");
    }

    [Fact]
    public void Device_is_the_deviceName_when_the_route_says_name()
    {
        var readings = Ok(Decoder, Uplink(), Route("name"), Topic);
        Assert.All(readings, r => Assert.Equal("Test device", r.DeviceId));
    }

    [Fact]
    public void Device_is_the_devEui_when_the_route_says_devEui()
    {
        var readings = Ok(Decoder, Uplink(), Route("devEui"), Topic);
        Assert.All(readings, r => Assert.Equal("0101010101010101", r.DeviceId));
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("name")]
    public void An_uplink_whose_devEui_is_not_the_topics_is_device_mismatch(string deviceIdFrom)
    {
        var error = Fails(Decoder, Uplink(), Route(deviceIdFrom), "application/x/device/ffffffffffffffff/event/up");
        Assert.Equal(QuarantineReasons.DeviceMismatch, error.Reason);
        Assert.Contains("ffffffffffffffff", error.Detail);
        Assert.Contains("0101010101010101", error.Detail);
        // EUIs are hexadecimal: the case of the digits does not make another device.
        Assert.NotEmpty(Ok(Decoder, Uplink().Replace("0101010101010101", "0A0B0C0D0E0F0102"), Route(), "application/x/device/0a0b0c0d0e0f0102/event/up"));
    }

    [Fact]
    public void Time_is_parsed_to_the_nanosecond()
    {
        var readings = Ok(Decoder, Uplink(), Route(), Topic);
        Assert.All(readings, r => Assert.Equal(1_658_136_855_775_023_242L, r.TimestampNs));
    }

    [Theory]
    [InlineData("2022-07-18T09:34:15.775023242Z", 1_658_136_855_775_023_242L)]
    [InlineData("2022-07-18T11:34:15.775023242+02:00", 1_658_136_855_775_023_242L)]
    [InlineData("2022-07-18T09:34:15.000000001Z", 1_658_136_855_000_000_001L)]
    [InlineData("2022-07-18T09:34:15.7750232Z", 1_658_136_855_775_023_200L)]
    [InlineData("2022-07-18T09:34:15.77Z", 1_658_136_855_770_000_000L)]
    [InlineData("2022-07-18T09:34:15Z", 1_658_136_855_000_000_000L)]
    public void Time_in_any_rfc3339_precision(string time, long expectedNs)
    {
        var payload = $$$"""{"time":"{{{time}}}","deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1}}""";
        var r = Assert.Single(Ok(Decoder, payload, Route(), Topic));
        Assert.Equal(expectedNs, r.TimestampNs);
    }

    [Fact]
    public void Missing_or_null_time_leaves_the_reading_without_a_time()
    {
        var r = Assert.Single(Ok(Decoder, """{"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1}}""", Route(), Topic));
        Assert.Null(r.TimestampNs);
        r = Assert.Single(Ok(Decoder, """{"time":null,"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1}}""", Route(), Topic));
        Assert.Null(r.TimestampNs);
    }

    [Fact]
    public void Bad_time_is_bad_timestamp()
    {
        var error = Fails(Decoder, """{"time":"yesterday","deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1}}""", Route(), Topic);
        Assert.Equal(QuarantineReasons.BadTimestamp, error.Reason);
    }

    [Fact]
    public void Nested_objects_are_flattened_with_dots()
    {
        var readings = Ok(Decoder, Uplink("""{"sensor":{"battery":{"voltage":3.6},"temp":19},"count":3}"""), Route(), Topic);

        Assert.Equal(["sensor.battery.voltage", "sensor.temp", "count"], readings.Select(r => r.Field));
        Assert.Equal(3.6, readings.Single("sensor.battery.voltage").Number);
    }

    [Fact]
    public void Arrays_in_object_give_invalid_readings_and_the_rest_is_kept()
    {
        var readings = Ok(Decoder, Uplink("""{"samples":[1,2,3],"temperature":20}"""), Route(), Topic);

        var samples = readings.Single("samples");
        Assert.Equal(ReadingKind.Invalid, samples.Kind);
        Assert.Equal(QuarantineReasons.Unsupported, samples.ErrorReason);
        Assert.Equal("0101010101010101", samples.DeviceId);
        Assert.Equal(20, readings.Single("temperature").Number);
    }

    [Fact]
    public void Null_values_in_object_are_skipped()
    {
        var r = Assert.Single(Ok(Decoder, Uplink("""{"temperature":null,"humidity":40}"""), Route(), Topic));
        Assert.Equal("humidity", r.Field);
    }

    [Fact]
    public void Missing_object_is_missing_decoded_payload()
    {
        Assert.Equal(QuarantineReasons.MissingDecodedPayload, Fails(Decoder, Uplink(obj: null), Route(), Topic).Reason);
    }

    [Fact]
    public void Null_object_is_missing_decoded_payload()
    {
        Assert.Equal(QuarantineReasons.MissingDecodedPayload, Fails(Decoder, Uplink(obj: "null"), Route(), Topic).Reason);
    }

    [Fact]
    public void Object_that_is_not_an_object_is_malformed()
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, Uplink(obj: "[1,2]"), Route(), Topic).Reason);
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, Uplink(obj: "\"AQID\""), Route(), Topic).Reason);
    }

    [Fact]
    public void Missing_deviceInfo_falls_back_to_the_topic_device()
    {
        var readings = Ok(Decoder, Uplink(deviceInfo: ""), Route(), Topic);
        Assert.All(readings, r => Assert.Equal("0101010101010101", r.DeviceId));

        readings = Ok(Decoder, Uplink(deviceInfo: ""), Route("name"), "application/app/device/a840414f61826d4e/event/up");
        Assert.All(readings, r => Assert.Equal("a840414f61826d4e", r.DeviceId));
    }

    [Fact]
    public void No_device_anywhere_is_missing_device_id()
    {
        var route = new TopicRoute { Filter = "chirpstack/up", Format = "chirpstack" };
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, Uplink(deviceInfo: ""), route, "chirpstack/up").Reason);
    }

    [Theory]
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1}""")]                        // truncated
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1}} trailing""")]             // trailing garbage
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1}}{}""")]
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1},}""")]                     // trailing comma
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1,"a":2}}""")]                // duplicate key in object
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":1},"object":{"a":2}}""")]     // duplicate top-level key
    [InlineData("""{"deviceInfo":"0101","object":{"a":1}}""")]                               // deviceInfo not an object
    [InlineData("""{"deviceInfo":{"devEui":"01"},"object":{"a":NaN}}""")]
    [InlineData("""[{"deviceInfo":{"devEui":"01"},"object":{"a":1}}]""")]                    // not an object
    [InlineData("")]
    [InlineData("not json")]
    public void Malformed_json_is_malformed_payload(string payload)
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, payload, Route(), Topic).Reason);
    }
}
