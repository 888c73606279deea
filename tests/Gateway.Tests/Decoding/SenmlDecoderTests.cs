using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Decoding.SenML;
using CityGateway.Routing;
using static CityGateway.Tests.Decoding.DecoderHarness;

namespace CityGateway.Tests.Decoding;

public class SenmlDecoderTests
{
    private static readonly SenmlDecoder Decoder = new();

    private static readonly TopicRoute DeviceTopicRoute = new() { Filter = "city/+/+/+", Format = "senml", Topic = "city/{domain}/{district}/{device}" };

    /// <summary>1.276020076001e+09 s, the base time of RFC 8428's examples, in ns.</summary>
    private const long RfcBaseTimeNs = 1_276_020_076_001_000_000;

    [Fact]
    public void Pack_of_a_newer_SenML_version_is_refused_and_version_10_is_accepted()
    {
        var error = Fails(Decoder, """[{"bver":11,"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":20}]""");
        Assert.Equal(QuarantineReasons.MalformedPayload, error.Reason);
        Assert.Contains("bver", error.Detail);
        var ok = Ok(Decoder, """[{"bver":10,"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":20}]""");
        Assert.Equal(20, ok.Single("temp").Number);
    }

    private static void AssertTime(long expectedNs, Reading r)
    {
        Assert.NotNull(r.TimestampNs);
        Assert.True(Math.Abs(r.TimestampNs!.Value - expectedNs) <= 1_000,
            $"time {r.TimestampNs} differs from {expectedNs} by more than 1 µs");
    }

    [Fact]
    public void Rfc_single_datapoint_named_by_device_urn_uses_the_id_as_device_and_the_unit_as_field()
    {
        var readings = Ok(Decoder, """[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]""");

        var r = Assert.Single(readings);
        Assert.Equal("10e2073a01080063", r.DeviceId);
        Assert.Equal("Cel", r.Field);
        Assert.Equal("Cel", r.Unit);
        Assert.Equal(ReadingKind.Number, r.Kind);
        Assert.Equal(23.1, r.Number);
        Assert.Equal(ReceivedAtNs, r.TimestampNs); // no time at all: "now"
    }

    [Fact]
    public void A_device_urn_name_must_be_the_topic_device()
    {
        var readings = Ok(Decoder, """[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]""", DeviceTopicRoute, "city/environment/north/10e2073a01080063");
        var r = Assert.Single(readings);
        Assert.Equal("10e2073a01080063", r.DeviceId);
        Assert.Equal("Cel", r.Field);

        // A device publishing on its own topic cannot speak for another.
        var error = Fails(Decoder, """[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]""", DeviceTopicRoute, "city/environment/north/env-0001");
        Assert.Equal(QuarantineReasons.DeviceMismatch, error.Reason);
        error = Fails(Decoder, """[{"bn":"env-0001/","n":"temp","v":1},{"bn":"env-0002/","n":"temp","v":2}]""", DeviceTopicRoute, "city/environment/north/env-0001");
        Assert.Equal(QuarantineReasons.DeviceMismatch, error.Reason);
        Assert.StartsWith("record 1:", error.Detail);
    }

    [Fact]
    public void Device_urn_name_without_a_unit_has_no_field_name_and_is_malformed()
    {
        var error = Fails(Decoder, """[{"n":"urn:dev:ow:10e2073a01080063","v":23.1}]""");
        Assert.Equal(QuarantineReasons.MalformedPayload, error.Reason);
    }

    [Theory]
    [InlineData("", "urn:dev:ow:10e2073a01080063", "Cel", null, "10e2073a01080063", "Cel")]
    [InlineData("urn:dev:ow:10e2073a01080063:", null, "%RH", null, "10e2073a01080063", "%RH")]
    [InlineData("urn:dev:ow:10e2073a01080063", null, "lon", "topic-dev", "10e2073a01080063", "lon")]
    [InlineData("urn:dev:mac:0024befffe804ff1:", "voltage", "V", null, "0024befffe804ff1", "voltage")]
    [InlineData("", "urn:dev:ow:10e2073a01080063:temp", "Cel", null, "10e2073a01080063", "temp")]
    [InlineData("", "sensor-7/temp", null, null, "sensor-7", "temp")]
    [InlineData("", "temp", null, "topic-dev", "topic-dev", "temp")]
    [InlineData("env-0001/", "pm25", null, null, "env-0001", "pm25")]
    [InlineData("env-0001/pm25", null, null, null, "env-0001", "pm25")]
    [InlineData("pm25", null, null, "topic-dev", "topic-dev", "pm25")]
    public void SplitName_separates_device_and_field(string bn, string? n, string? unit, string? topicDevice, string device, string field)
    {
        var (d, f) = SenmlDecoder.SplitName(bn, n, unit, topicDevice, new StringPool(64));
        Assert.Equal(device, d);
        Assert.Equal(field, f);
    }

    [Fact]
    public void SplitName_without_base_name_or_topic_device_has_no_device()
    {
        var (d, f) = SenmlDecoder.SplitName("", "temp", "Cel", null, new StringPool(64));
        Assert.Null(d);
        Assert.Equal("temp", f);
    }

    [Fact]
    public void Rfc_multiple_datapoints_share_the_base_name()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
              {"n":"current","u":"A","v":1.2}
            ]
            """);

        Assert.Equal(2, readings.Count);
        Assert.All(readings, r => Assert.Equal("10e2073a01080063", r.DeviceId));
        Assert.Equal(("voltage", "V", 120.1), (readings[0].Field, readings[0].Unit, readings[0].Number));
        Assert.Equal(("current", "A", 1.2), (readings[1].Field, readings[1].Unit, readings[1].Number));
    }

    [Fact]
    public void Rfc_multiple_measurements_resolve_base_time_plus_relative_time_and_unit_over_base_unit()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.276020076001e+09,
               "bu":"A","bver":5,
               "n":"voltage","u":"V","v":120.1},
              {"n":"current","t":-5,"v":1.2},
              {"n":"current","t":-4,"v":1.3},
              {"n":"current","t":-3,"v":1.4},
              {"n":"current","t":-2,"v":1.5},
              {"n":"current","t":-1,"v":1.6},
              {"n":"current","v":1.7}
            ]
            """);

        Assert.Equal(7, readings.Count);
        Assert.All(readings, r => Assert.Equal("10e2073a01080063", r.DeviceId));
        Assert.Equal("voltage", readings[0].Field);
        Assert.Equal("V", readings[0].Unit);
        AssertTime(RfcBaseTimeNs, readings[0]);
        double[] values = [1.2, 1.3, 1.4, 1.5, 1.6, 1.7];
        for (int i = 0; i < 6; i++)
        {
            var r = readings[i + 1];
            Assert.Equal("current", r.Field);
            Assert.Equal("A", r.Unit);
            Assert.Equal(values[i], r.Number);
            AssertTime(RfcBaseTimeNs + (i - 5) * 1_000_000_000L, r);
        }
    }

    [Fact]
    public void Rfc_pack_named_only_by_base_name_names_each_measurement_by_its_unit()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e+09,"bu":"%RH","v":20},
              {"u":"lon","v":24.30621},
              {"u":"lat","v":60.07965},
              {"t":60,"v":20.3},
              {"u":"lon","t":60,"v":24.30622},
              {"u":"lat","t":60,"v":60.07965}
            ]
            """);

        Assert.Equal(["%RH", "lon", "lat", "%RH", "lon", "lat"], readings.Select(r => r.Field));
        Assert.All(readings, r => Assert.Equal("10e2073a01080063", r.DeviceId));
        Assert.Equal(20.3, readings[3].Number);
        AssertTime(1_320_067_464_000_000_000, readings[0]);
        AssertTime(1_320_067_524_000_000_000, readings[5]);
    }

    [Fact]
    public void Rfc_multiple_data_types_keep_their_kinds_and_a_data_value_is_invalid()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"urn:dev:ow:10e2073a01080063:","n":"temperature","u":"Cel","v":23.1},
              {"n":"label","vs":"Machine Room"},
              {"n":"open","vb":false},
              {"n":"nfc-reader","vd":"aGkgCg"}
            ]
            """);

        Assert.Equal(4, readings.Count);
        Assert.All(readings, r => Assert.Equal("10e2073a01080063", r.DeviceId));
        var t = readings.Single("temperature");
        Assert.Equal((ReadingKind.Number, 23.1, "Cel"), (t.Kind, t.Number, t.Unit));
        var label = readings.Single("label");
        Assert.Equal((ReadingKind.Text, "Machine Room"), (label.Kind, label.Text));
        var open = readings.Single("open");
        Assert.Equal(ReadingKind.Boolean, open.Kind);
        Assert.False(open.Boolean);
        var nfc = readings.Single("nfc-reader");
        Assert.Equal(ReadingKind.Invalid, nfc.Kind);
        Assert.Equal(QuarantineReasons.Unsupported, nfc.ErrorReason);
    }

    [Fact]
    public void Boolean_true_is_kept()
    {
        var r = Assert.Single(Ok(Decoder, """[{"bn":"door-1/","n":"open","vb":true}]"""));
        Assert.Equal(ReadingKind.Boolean, r.Kind);
        Assert.True(r.Boolean);
    }

    [Fact]
    public void Relative_time_is_relative_to_the_receive_time()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"dev-1/","n":"a","t":-10,"v":1},
              {"n":"b","v":2},
              {"bt":-60,"n":"c","t":30,"v":3},
              {"n":"d","t":0.5,"v":4}
            ]
            """);

        Assert.Equal(ReceivedAtNs - 10_000_000_000L, readings.Single("a").TimestampNs);
        Assert.Equal(ReceivedAtNs, readings.Single("b").TimestampNs);
        Assert.Equal(ReceivedAtNs - 30_000_000_000L, readings.Single("c").TimestampNs);
        Assert.Equal(ReceivedAtNs - 59_500_000_000L, readings.Single("d").TimestampNs);
    }

    [Fact]
    public void Resolved_time_below_2_pow_28_is_relative_and_from_2_pow_28_absolute()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"dev-1/","n":"below","t":268435455,"v":1},
              {"n":"at","t":268435456,"v":2}
            ]
            """);

        Assert.Equal(ReceivedAtNs + 268_435_455_000_000_000L, readings.Single("below").TimestampNs);
        Assert.Equal(268_435_456_000_000_000L, readings.Single("at").TimestampNs);
    }

    [Fact]
    public void Base_value_is_added_to_each_value()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"meter-1/","bv":100,"n":"a","v":1.5},
              {"n":"b","v":-2},
              {"bv":0,"n":"c","v":7}
            ]
            """);

        Assert.Equal(101.5, readings.Single("a").Number);
        Assert.Equal(98, readings.Single("b").Number);
        Assert.Equal(7, readings.Single("c").Number);
    }

    [Fact]
    public void Base_fields_carry_forward_until_redefined_mid_pack()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"dev-a/","bt":1.7e9,"bu":"Cel","n":"t1","v":1},
              {"n":"t2","t":1,"v":2},
              {"bn":"dev-b/","bu":"%RH","n":"h","v":3},
              {"n":"t3","u":"K","v":4},
              {"bt":1.8e9,"n":"h2","v":5}
            ]
            """);

        Assert.Equal(["dev-a", "dev-a", "dev-b", "dev-b", "dev-b"], readings.Select(r => r.DeviceId));
        Assert.Equal(["Cel", "Cel", "%RH", "K", "%RH"], readings.Select(r => r.Unit));
        AssertTime(1_700_000_000_000_000_000, readings[0]);
        AssertTime(1_700_000_001_000_000_000, readings[1]);
        AssertTime(1_700_000_000_000_000_000, readings[2]);
        AssertTime(1_700_000_000_000_000_000, readings[3]);
        AssertTime(1_800_000_000_000_000_000, readings[4]);
    }

    [Fact]
    public void Record_with_only_base_fields_produces_no_reading()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.276020076001e+09,"bu":"Cel","bver":10},
              {"n":"temp","v":21}
            ]
            """);

        var r = Assert.Single(readings);
        Assert.Equal(("10e2073a01080063", "temp", "Cel"), (r.DeviceId, r.Field, r.Unit));
        AssertTime(RfcBaseTimeNs, r);

        Assert.Empty(Ok(Decoder, """[{"bn":"dev-1/","bt":1.7e9}]"""));
        Assert.Empty(Ok(Decoder, "[]"));
    }

    [Fact]
    public void Sum_is_a_number_with_the_base_sum_added()
    {
        var readings = Ok(Decoder, """
            [
              {"bn":"meter-1/","n":"energy","u":"J","s":5},
              {"bs":1000,"n":"energy2","s":5},
              {"n":"flow","v":2,"s":40}
            ]
            """);

        var e = readings.Single("energy");
        Assert.Equal((ReadingKind.Number, 5.0, "J"), (e.Kind, e.Number, e.Unit));
        Assert.Equal(1005, readings.Single("energy2").Number);
        Assert.Equal(2, readings.Single("flow").Number); // value and sum together: the value is the reading
    }

    [Fact]
    public void Unknown_keys_without_underscore_are_ignored()
    {
        var r = Assert.Single(Ok(Decoder, """[{"bn":"dev-1/","n":"a","v":1,"ut":60,"x-vendor":{"k":[1,2]}}]"""));
        Assert.Equal(1, r.Number);
    }

    [Fact]
    public void Topic_device_names_the_device_when_the_name_does_not()
    {
        var r = Assert.Single(Ok(Decoder, """[{"n":"temperature","u":"Cel","v":20.5}]""", DeviceTopicRoute, "city/environment/north/env-0001"));
        Assert.Equal(("env-0001", "temperature"), (r.DeviceId, r.Field));
    }

    [Fact]
    public void No_device_anywhere_is_missing_device_id_and_earlier_records_are_not_kept()
    {
        Assert.Equal(QuarantineReasons.MissingDeviceId, Fails(Decoder, """[{"n":"temperature","v":20.5}]""").Reason);
        // The first record names its device, the second does not: the whole pack is refused.
        Assert.Equal(QuarantineReasons.MissingDeviceId,
            Fails(Decoder, """[{"n":"urn:dev:ow:10e2073a01080063:temp","v":1},{"n":"hum","v":2}]""").Reason);
    }

    [Fact]
    public void Non_finite_value_is_an_invalid_reading()
    {
        var readings = Ok(Decoder, """[{"bn":"dev-1/","n":"a","v":1e999},{"n":"b","v":2}]""");

        var a = readings.Single("a");
        Assert.Equal(ReadingKind.Invalid, a.Kind);
        Assert.Equal(QuarantineReasons.NonFinite, a.ErrorReason);
        Assert.Equal("dev-1", a.DeviceId);
        Assert.Equal(2, readings.Single("b").Number);
    }

    [Fact]
    public void Base_value_plus_value_overflowing_is_an_invalid_reading()
    {
        var r = Assert.Single(Ok(Decoder, """[{"bn":"dev-1/","bv":1.7e308,"n":"a","v":1.7e308}]"""));
        Assert.Equal(ReadingKind.Invalid, r.Kind);
        Assert.Equal(QuarantineReasons.NonFinite, r.ErrorReason);
    }

    [Theory]
    [InlineData("""{"bn":"dev-1/","n":"a","v":1}""")]                          // not an array
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},5]""")]                     // a record that is not an object
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},["n","b"]]""")]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1,"vs":"x"}]""")]               // two value fields
    [InlineData("""[{"bn":"dev-1/","n":"a","vb":true,"vd":"aGk"}]""")]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1,"n":"b"}]""")]               // duplicate key
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},{"n":"b","v":1,"v":2}]""")]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1,"foo_":1}]""")]              // must-understand key
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},{"n":"b","v":2,"bx_":true}]""")]
    [InlineData("""[{"v":1}]""")]                                              // no name at all
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},{"bn":"","v":2}]""")]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":NaN}]""")]                      // NaN is not JSON
    [InlineData("""[{"bn":"dev-1/","n":"a","t":1e999,"v":1}]""")]              // non-finite time
    [InlineData("""[{"bn":"dev-1/","bt":-1e999,"n":"a","v":1}]""")]
    [InlineData("""[{"bn":"dev-1/","bv":1e999,"n":"a","v":1}]""")]             // non-finite base value
    [InlineData("""[{"bn":"dev-1/","n":"a","v":"1"}]""")]                      // v must be a number
    [InlineData("""[{"bn":"dev-1/","n":"a","vb":"true"}]""")]
    [InlineData("""[{"bn":5,"n":"a","v":1}]""")]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1}] x""")]                      // trailing garbage
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1}""")]                         // truncated
    [InlineData("""[{"n":"dev-1/","v":1}]""")]                                 // name ends in a separator: no field
    public void Malformed_packs_are_rejected_whole(string payload)
    {
        var error = Fails(Decoder, payload);
        Assert.Equal(QuarantineReasons.MalformedPayload, error.Reason);
    }

    [Theory]
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},{"n":"b","t":1e12,"v":2}]""")]   // year 33658
    [InlineData("""[{"bn":"dev-1/","n":"a","v":1},{"n":"b","t":-1e12,"v":2}]""")]  // relative, 31 700 years ago
    public void Time_out_of_range_is_bad_timestamp_for_the_whole_pack(string payload)
    {
        Assert.Equal(QuarantineReasons.BadTimestamp, Fails(Decoder, payload).Reason);
    }
}
