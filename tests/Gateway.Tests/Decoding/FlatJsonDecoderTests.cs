using CityGateway.Decoding;
using CityGateway.Decoding.Json;
using CityGateway.Routing;
using static CityGateway.Tests.Decoding.DecoderHarness;

namespace CityGateway.Tests.Decoding;

public class FlatJsonDecoderTests
{
    private static readonly FlatJsonDecoder Decoder = new();

    private static TopicRoute Route(string timestampFormat = "auto", string? topic = null) => new()
    {
        Filter = "city/#",
        Format = "json",
        Topic = topic,
        TimestampFormat = timestampFormat,
    };

    /// <summary>2023-11-14T22:13:20Z.</summary>
    private const long T0 = 1_700_000_000_000_000_000;

    [Fact]
    public void Fields_device_and_time_come_from_the_payload()
    {
        var readings = Ok(Decoder, """{"device":"env-0001","ts":1700000000000,"pm25":12.1,"temp_f":71.2}""", Route());

        Assert.Equal(["pm25", "temp_f"], readings.Select(r => r.Field));
        Assert.All(readings, r =>
        {
            Assert.Equal("env-0001", r.DeviceId);
            Assert.Equal(T0, r.TimestampNs);
            Assert.Equal(ReadingKind.Number, r.Kind);
            Assert.Null(r.Unit);
            Assert.Null(r.Tags);
        });
        Assert.Equal(12.1, readings.Single("pm25").Number);
        Assert.Equal(71.2, readings.Single("temp_f").Number);
    }

    [Theory]
    [InlineData("1700000000", T0)]                       // seconds
    [InlineData("1700000000.5", T0 + 500_000_000)]
    [InlineData("1700000000123", T0 + 123_000_000)]      // milliseconds
    [InlineData("1700000000123456", T0 + 123_456_000)]   // microseconds
    [InlineData("1700000000123456789", T0 + 123_456_789)] // nanoseconds
    [InlineData("\"1700000000123\"", T0 + 123_000_000)]  // numeric string
    [InlineData("\"2023-11-14T22:13:20Z\"", T0)]
    [InlineData("\"2023-11-14T22:13:20.5Z\"", T0 + 500_000_000)]
    [InlineData("\"2023-11-14T23:13:20+01:00\"", T0)]
    [InlineData("\"2023-11-14T22:13:20.1234567Z\"", T0 + 123_456_700)]
    [InlineData("\"2023-11-14T22:13:20.123456789Z\"", T0 + 123_456_789)]
    [InlineData("\"2023-11-14T22:13:20\"", T0)]          // no offset: UTC
    public void Timestamp_unit_is_detected_automatically(string ts, long expectedNs)
    {
        var r = Assert.Single(Ok(Decoder, $$"""{"device":"d1","ts":{{ts}},"v":1}""", Route()));
        Assert.Equal(expectedNs, r.TimestampNs);
    }

    [Theory]
    [InlineData("unix_s", "1700000000", T0)]
    [InlineData("unix_s", "1700000000.5", T0 + 500_000_000)]
    [InlineData("unix_ms", "1700000000000", T0)]
    [InlineData("unix_ms", "1700000", 1_700_000_000_000L)]  // small, but milliseconds as configured
    [InlineData("unix_us", "1700000000000000", T0)]
    [InlineData("unix_us", "1700000000", 1_700_000_000_000L)]
    [InlineData("unix_ns", "1700000000000000001", T0 + 1)]
    [InlineData("unix_ns", "1700000000", 1_700_000_000L)]
    [InlineData("iso8601", "\"2023-11-14T22:13:20Z\"", T0)]
    [InlineData("unix_ms", "\"1700000000000\"", T0)]
    public void Timestamp_format_can_be_set_explicitly(string format, string ts, long expectedNs)
    {
        var r = Assert.Single(Ok(Decoder, $$"""{"device":"d1","ts":{{ts}},"v":1}""", Route(format)));
        Assert.Equal(expectedNs, r.TimestampNs);
    }

    [Theory]
    [InlineData("auto", "\"yesterday\"")]
    [InlineData("auto", "true")]
    [InlineData("auto", "{\"s\":1}")]
    [InlineData("iso8601", "1700000000")]               // a number is not ISO 8601
    [InlineData("iso8601", "\"1700000000\"")]
    [InlineData("unix_s", "\"2023-11-14T22:13:20Z\"")]  // a date is not seconds
    [InlineData("unix_s", "100000000000")]              // overflows nanoseconds
    [InlineData("auto", "1e300")]
    public void Bad_timestamp_is_bad_timestamp(string format, string ts)
    {
        var error = Fails(Decoder, $$"""{"device":"d1","v":1,"ts":{{ts}},"w":2}""", Route(format));
        Assert.Equal(QuarantineReasons.BadTimestamp, error.Reason);
    }

    [Fact]
    public void Null_or_missing_timestamp_leaves_the_reading_without_a_time()
    {
        Assert.Null(Assert.Single(Ok(Decoder, """{"device":"d1","ts":null,"v":1}""", Route())).TimestampNs);
        Assert.Null(Assert.Single(Ok(Decoder, """{"device":"d1","v":1}""", Route())).TimestampNs);
    }

    [Fact]
    public void Device_and_timestamp_keys_come_from_the_route()
    {
        var route = new TopicRoute { Filter = "#", Format = "json", DeviceField = "id", TimestampField = "time" };
        var readings = Ok(Decoder, """{"id":"wq-7","time":"2023-11-14T22:13:20Z","device":"not-me","ts":5}""", route);
        Assert.All(readings, r => Assert.Equal(("wq-7", (long?)T0), (r.DeviceId, r.TimestampNs)));
        // The default key names are ordinary fields for this route.
        Assert.Equal("not-me", readings.Single("device").Text);
        Assert.Equal(5, readings.Single("ts").Number);
    }

    [Fact]
    public void Numeric_device_id_is_kept_as_its_text()
    {
        var r = Assert.Single(Ok(Decoder, """{"device":1234,"v":1}""", Route()));
        Assert.Equal("1234", r.DeviceId);
    }

    [Fact]
    public void Device_comes_from_the_topic_template_when_the_payload_has_none()
    {
        var route = Route(topic: "city/{domain}/{district}/{device}");
        var readings = Ok(Decoder, """{"ts":1700000000,"intensity":12}""", route, "city/traffic/centre/tc-01");
        Assert.Equal("tc-01", Assert.Single(readings).DeviceId);

        // The payload may name the device too, if it is the same one.
        readings = Ok(Decoder, """{"device":"tc-01","intensity":12}""", route, "city/traffic/centre/tc-01");
        Assert.Equal("tc-01", Assert.Single(readings).DeviceId);
    }

    [Fact]
    public void A_payload_naming_another_device_than_the_topic_is_device_mismatch()
    {
        var route = Route(topic: "city/{domain}/{district}/{device}");
        var error = Fails(Decoder, """{"device":"tc-02","intensity":12}""", route, "city/traffic/centre/tc-01");
        Assert.Equal(QuarantineReasons.DeviceMismatch, error.Reason);
        Assert.Contains("'tc-01'", error.Detail);
        Assert.Contains("'tc-02'", error.Detail);
        // Without {device} in the route's template the payload names the device.
        Assert.Equal("tc-02", Assert.Single(Ok(Decoder, """{"device":"tc-02","intensity":12}""", Route(), "city/traffic/centre/tc-01")).DeviceId);
    }

    [Fact]
    public void Missing_device_id_is_missing_device_id()
    {
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, """{"ts":1700000000,"intensity":12}""", Route()).Reason);
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, """{"device":null,"intensity":12}""", Route()).Reason);
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, """{"device":"","intensity":12}""", Route()).Reason);
        // A template without {device} does not help.
        Assert.Equal(QuarantineReasons.MissingDeviceId,
            Fails(Decoder, """{"intensity":12}""", Route(topic: "city/{domain}/{district}"), "city/traffic/centre").Reason);
    }

    [Fact]
    public void Tag_fields_become_tags_of_every_reading()
    {
        var readings = Ok(Decoder, """{"device":"tc-01","lane":2,"vehicleType":"car","intensity":12,"averageVehicleSpeed":48.5}""", Route());

        Assert.Equal(["intensity", "averageVehicleSpeed"], readings.Select(r => r.Field));
        Assert.All(readings, r => Assert.Equal(
            [new KeyValuePair<string, string>("lane", "2"), new KeyValuePair<string, string>("vehicleType", "car")], r.Tags!));
    }

    [Fact]
    public void Tag_fields_are_configurable_and_null_tags_are_dropped()
    {
        var route = new TopicRoute { Filter = "#", Format = "json", TagFields = ["direction"] };
        var r = Assert.Single(Ok(Decoder, """{"device":"tc-01","direction":"north","lane":"1"}""", route));
        Assert.Equal("lane", r.Field); // not a tag for this route
        Assert.Equal([new KeyValuePair<string, string>("direction", "north")], r.Tags!);

        r = Assert.Single(Ok(Decoder, """{"device":"tc-01","lane":null,"intensity":3}""", Route()));
        Assert.Null(r.Tags);
    }

    [Fact]
    public void Tag_that_is_not_a_scalar_is_malformed()
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, """{"device":"tc-01","lane":{"n":1},"intensity":3}""", Route()).Reason);
    }

    [Fact]
    public void Null_values_are_skipped()
    {
        var r = Assert.Single(Ok(Decoder, """{"device":"d1","pm25":null,"pm10":20}""", Route()));
        Assert.Equal("pm10", r.Field);
    }

    [Fact]
    public void Nested_objects_are_flattened()
    {
        var readings = Ok(Decoder, """{"device":"d1","air":{"pm25":5,"gas":{"no2":30}},"noise":{}}""", Route());
        Assert.Equal(["air.pm25", "air.gas.no2"], readings.Select(r => r.Field));
        Assert.Equal(30, readings.Single("air.gas.no2").Number);
    }

    [Fact]
    public void String_and_boolean_values_keep_their_kinds()
    {
        var readings = Ok(Decoder, """{"device":"d1","status":"ok","door":true,"alarm":false,"escaped":"a\"b\u00e9"}""", Route());

        var status = readings.Single("status");
        Assert.Equal((ReadingKind.Text, "ok"), (status.Kind, status.Text));
        Assert.Equal((ReadingKind.Boolean, true), (readings.Single("door").Kind, readings.Single("door").Boolean));
        Assert.Equal((ReadingKind.Boolean, false), (readings.Single("alarm").Kind, readings.Single("alarm").Boolean));
        Assert.Equal("a\"bé", readings.Single("escaped").Text);
    }

    [Fact]
    public void Out_of_range_number_is_an_invalid_non_finite_reading()
    {
        var readings = Ok(Decoder, """{"device":"d1","pm25":1e999,"pm10":20}""", Route());

        var pm25 = readings.Single("pm25");
        Assert.Equal(ReadingKind.Invalid, pm25.Kind);
        Assert.Equal(QuarantineReasons.NonFinite, pm25.ErrorReason);
        Assert.Equal("d1", pm25.DeviceId);
        Assert.Equal(20, readings.Single("pm10").Number);
    }

    [Fact]
    public void Arrays_are_invalid_readings()
    {
        var readings = Ok(Decoder, """{"device":"d1","samples":[1,[2],{"x":3}],"pm10":20}""", Route());
        Assert.Equal(QuarantineReasons.Unsupported, readings.Single("samples").ErrorReason);
        Assert.Equal(20, readings.Single("pm10").Number);
    }

    [Theory]
    [InlineData("""{"device":"d1","pm25":NaN}""")]
    [InlineData("""{"device":"d1","pm25":Infinity}""")]
    [InlineData("""{"device":"d1","pm25":1,"pm25":2}""")]                 // duplicate key
    [InlineData("""{"device":"d1","pm25":null,"pm25":2}""")]
    [InlineData("""{"device":"d1","device":"d2","pm25":1}""")]
    [InlineData("""{"device":"d1","air":{"pm25":1,"pm25":2}}""")]          // duplicate nested key
    [InlineData("""{"device":"d1","pm25":1} x""")]                        // trailing garbage
    [InlineData("""{"device":"d1","pm25":1}{"device":"d1","pm25":2}""")]
    [InlineData("""{"device":"d1","pm25":1,}""")]                         // trailing comma
    [InlineData("{\"device\":\"d1\",\"pm25\":1 // comment\n}")]
    [InlineData("""[{"device":"d1","pm25":1}]""")]                        // top-level array
    [InlineData("42")]
    [InlineData("")]
    [InlineData("""{"device":"d1","pm25":1""")]                           // truncated
    [InlineData("""{"device":true,"pm25":1}""")]                          // device must be a string or a number
    public void Malformed_payload(string payload)
    {
        Assert.Equal(QuarantineReasons.MalformedPayload, Fails(Decoder, payload, Route()).Reason);
    }

    [Fact]
    public void Invalid_utf8_is_malformed()
    {
        byte[] payload = [.. "{\"device\":\"d1\",\"s\":\""u8, 0xC3, 0x28, .. "\"}"u8];
        var (error, _) = Run(Decoder, payload, Route());
        Assert.NotNull(error);
        Assert.Equal(QuarantineReasons.MalformedPayload, error.Reason);
    }
}
