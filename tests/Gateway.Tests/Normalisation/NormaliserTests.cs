using System.Text;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Normalisation;

public sealed class NormaliserTests : IDisposable
{
    /// <summary>2023-11-14T22:13:20Z.</summary>
    private const long Now = 1_700_000_000_000_000_000;
    private const long Second = 1_000_000_000;

    private readonly TempDir _dir = new("normaliser");
    private readonly QuarantineStore _quarantine;
    private readonly Normaliser _normaliser;
    private readonly TopicRoute _route = new() { Filter = "city/#", Format = "json" };
    private readonly RawFrame _frame = new("mqtt", "city/environment/north/env-0001", Encoding.UTF8.GetBytes("{}"), Now, 1, 2);

    public NormaliserTests()
    {
        _quarantine = new QuarantineStore(Options.Create(new QuarantineOptions { Path = _dir.File("quarantine.jsonl") }),
            NullLogger<QuarantineStore>.Instance);
        var registry = DeviceRegistry.Build(RegistryFile(), "test");
        _normaliser = new Normaliser(() => registry, new NormalisationOptions
        {
            MaxFutureSkew = TimeSpan.FromMinutes(5),
            MaxAge = TimeSpan.FromDays(7),
        });
    }

    public void Dispose()
    {
        _quarantine.Dispose();
        _dir.Dispose();
    }

    internal static DeviceRegistryFile RegistryFile() => new()
    {
        City = "metropolis",
        DeviceTypes = new()
        {
            ["env-sensor"] = new DeviceTypeEntry
            {
                Domain = "environment",
                Fields = new()
                {
                    ["temp_f"] = new FieldMapping { Metric = "temperature", Unit = "°F" },
                    ["pm2_5"] = new FieldMapping { Metric = "pm25" },
                    ["no2_ppb"] = new FieldMapping { Metric = "no2", Unit = "ppb" },
                    ["seq"] = new FieldMapping { Metric = "seq", Custom = true, Type = "integer" },
                    ["fw"] = new FieldMapping { Metric = "firmware", Custom = true, Type = "string" },
                    ["door"] = new FieldMapping { Metric = "doorOpen", Custom = true, Type = "boolean" },
                    ["rssi"] = new FieldMapping { Metric = "rssi", Custom = true },
                },
                Ignore = ["battery", "snr"],
            },
            ["counter"] = new DeviceTypeEntry
            {
                Domain = "traffic",
                Fields = new()
                {
                    ["count"] = new FieldMapping { Metric = "intensity", Unit = "vehicles" },
                    ["speed"] = new FieldMapping { Metric = "averageVehicleSpeed", Unit = "mph" },
                    ["occ"] = new FieldMapping { Metric = "occupancy", Unit = "%" },
                },
            },
        },
        Devices = new()
        {
            ["env-0001"] = new DeviceEntry { Type = "env-sensor", District = "north", Site = "park-gate" },
            ["tc-01"] = new DeviceEntry { Type = "counter", City = "gotham", District = "centre", Site = "" },
        },
    };

    private static Reading Num(string device, string field, double v, string? unit = null, long? ts = Now,
        IReadOnlyList<KeyValuePair<string, string>>? tags = null) => new()
    {
        DeviceId = device, Field = field, Kind = ReadingKind.Number, Number = v, Unit = unit, TimestampNs = ts, Tags = tags,
    };

    private (List<Point> Points, int Rejected) Run(params Reading[] readings)
    {
        var points = new List<Point>();
        int rejected = _normaliser.Normalise(_frame, _route, readings.ToList(), points, _quarantine);
        Assert.Equal(rejected, _quarantine.Total);
        return (points, rejected);
    }

    private static PointField Field(Point p, string name) => Assert.Single(p.Fields, f => f.Name == name);

    private QuarantineEntry Quarantined(string reason)
    {
        var entries = _quarantine.ReadAll().ToList();
        return Assert.Single(entries, e => e.Reason == reason);
    }

    [Fact]
    public void Fields_get_canonical_names_and_units()
    {
        var (points, rejected) = Run(
            Num("env-0001", "temp_f", 68),
            Num("env-0001", "pm2_5", 12.5),
            Num("env-0001", "no2_ppb", 20),
            Num("env-0001", "relativeHumidity", 55, "%"));     // a canonical name needs no mapping

        Assert.Equal(0, rejected);
        var p = Assert.Single(points);
        Assert.Equal("environment", p.Measurement);
        Assert.Equal(Now, p.TimestampNs);
        Assert.Equal("city/environment/north/env-0001", p.Origin);
        Assert.Equal(["temperature", "pm25", "no2", "relativeHumidity"], p.Fields.Select(f => f.Name));
        Assert.All(p.Fields, f => Assert.Equal(FieldKind.Float, f.Kind));
        Assert.Equal(20, Field(p, "temperature").Float, 9);
        Assert.Equal(12.5, Field(p, "pm25").Float);
        Assert.Equal(20 * 46.0055 / 24.45, Field(p, "no2").Float, 9);
        Assert.Equal(0.55, Field(p, "relativeHumidity").Float, 12);
    }

    [Fact]
    public void Unit_in_the_payload_wins_over_the_registry_unit()
    {
        var (points, _) = Run(Num("env-0001", "temp_f", 20, "Cel"));
        Assert.Equal(20, Field(Assert.Single(points), "temperature").Float);
    }

    [Fact]
    public void Tags_are_city_district_site_and_device_sorted_by_key()
    {
        var (points, _) = Run(Num("env-0001", "pm2_5", 1));

        Assert.Equal(
            [new("city", "metropolis"), new("device", "env-0001"), new("district", "north"), new KeyValuePair<string, string>("site", "park-gate")],
            Assert.Single(points).Tags);
    }

    [Fact]
    public void Device_city_overrides_the_registry_city_and_empty_site_is_left_out_and_lane_is_a_tag()
    {
        var lane = new KeyValuePair<string, string>[] { new("lane", "2") };
        var (points, rejected) = Run(
            Num("tc-01", "count", 14, tags: lane),
            Num("tc-01", "speed", 30, tags: lane),
            Num("tc-01", "occ", 12, tags: lane));

        Assert.Equal(0, rejected);
        var p = Assert.Single(points);
        Assert.Equal("traffic", p.Measurement);
        Assert.Equal(
            [new("city", "gotham"), new("device", "tc-01"), new("district", "centre"), new KeyValuePair<string, string>("lane", "2")],
            p.Tags);
        Assert.Equal(14, Field(p, "intensity").Float);
        Assert.Equal(48.28032, Field(p, "averageVehicleSpeed").Float, 9);
        Assert.Equal(0.12, Field(p, "occupancy").Float, 12);
    }

    [Fact]
    public void Different_lanes_and_times_are_different_points()
    {
        var (points, _) = Run(
            Num("tc-01", "count", 1, tags: [new("lane", "1")]),
            Num("tc-01", "count", 2, tags: [new("lane", "2")]),
            Num("tc-01", "count", 3, ts: Now - Second, tags: [new("lane", "1")]),
            Num("tc-01", "count", 4, tags: [new("lane", "1")]));   // same point as the first: replaces its value

        Assert.Equal(3, points.Count);
        Assert.Equal(4, Field(points[0], "intensity").Float);
        Assert.Equal("1", points[0].Tag("lane"));
        Assert.Equal("2", points[1].Tag("lane"));
        Assert.Equal(Now - Second, points[2].TimestampNs);
    }

    [Fact]
    public void Reading_without_time_takes_the_receive_time()
    {
        var (points, _) = Run(Num("env-0001", "pm2_5", 1, ts: null));
        Assert.Equal(Now, Assert.Single(points).TimestampNs);
    }

    [Fact]
    public void Custom_fields_keep_their_type()
    {
        var (points, rejected) = Run(
            Num("env-0001", "seq", 42),
            new Reading { DeviceId = "env-0001", Field = "fw", Kind = ReadingKind.Text, Text = "1.4.2", TimestampNs = Now },
            new Reading { DeviceId = "env-0001", Field = "door", Kind = ReadingKind.Boolean, Boolean = true, TimestampNs = Now },
            Num("env-0001", "rssi", -87.5, unit: "dBm"));

        Assert.Equal(0, rejected);
        var p = Assert.Single(points);
        Assert.Equal(PointField.Of("seq", 42L), Field(p, "seq"));
        Assert.Equal(FieldKind.Integer, Field(p, "seq").Kind);
        Assert.Equal(PointField.Of("firmware", "1.4.2"), Field(p, "firmware"));
        Assert.Equal(PointField.Of("doorOpen", true), Field(p, "doorOpen"));
        Assert.Equal(PointField.Of("rssi", -87.5), Field(p, "rssi"));  // custom: no unit conversion
    }

    [Fact]
    public void Ignored_fields_are_dropped_without_quarantine()
    {
        var (points, rejected) = Run(Num("env-0001", "battery", 3.6), Num("env-0001", "snr", 7), Num("env-0001", "pm2_5", 4));

        Assert.Equal(0, rejected);
        Assert.Equal(["pm25"], Assert.Single(points).Fields.Select(f => f.Name));
        Assert.Empty(_quarantine.ReadAll());
    }

    [Fact]
    public void Message_with_only_ignored_fields_writes_no_point()
    {
        var (points, rejected) = Run(Num("env-0001", "battery", 3.6));
        Assert.Equal(0, rejected);
        Assert.Empty(points);
    }

    [Fact]
    public void Unknown_device_is_quarantined_once_per_frame()
    {
        var (points, rejected) = Run(Num("ghost-9", "pm25", 1), Num("ghost-9", "pm10", 2), Num("env-0001", "pm2_5", 3));

        Assert.Equal(1, rejected);
        var e = Quarantined(QuarantineReasons.UnknownDevice);
        Assert.Equal("ghost-9", e.Device);
        Assert.Equal("city/environment/north/env-0001", e.Topic);
        Assert.Equal("{}", e.Payload);
        Assert.Equal(Now, e.ReceivedAtNs);
        Assert.Equal("env-0001", Assert.Single(points).Tag("device"));
    }

    [Fact]
    public void Unknown_field_is_quarantined_and_the_rest_is_kept()
    {
        var (points, rejected) = Run(Num("env-0001", "pm2_5", 3), Num("env-0001", "mystery", 1), Num("env-0001", "intensity", 5));

        Assert.Equal(2, rejected); // intensity is a traffic metric, not an environment one
        Assert.Equal(2, _quarantine.CountsByReason[QuarantineReasons.UnknownField]);
        Assert.Contains(_quarantine.ReadAll(), e => e.Field == "mystery" && e.Device == "env-0001" && e.Reason == QuarantineReasons.UnknownField);
        Assert.Equal(["pm25"], Assert.Single(points).Fields.Select(f => f.Name));
    }

    [Fact]
    public void Wrong_type_is_quarantined_and_the_rest_is_kept()
    {
        var (points, rejected) = Run(
            new Reading { DeviceId = "env-0001", Field = "temp_f", Kind = ReadingKind.Text, Text = "warm", TimestampNs = Now },
            Num("env-0001", "pm2_5", 3));

        Assert.Equal(1, rejected);
        Assert.Equal("temp_f", Quarantined(QuarantineReasons.WrongType).Field);
        Assert.Equal(["pm25"], Assert.Single(points).Fields.Select(f => f.Name));
    }

    [Theory]
    [InlineData(42.5)]      // not an integer
    [InlineData(1e19)]      // out of range for a 64-bit integer
    public void Custom_integer_that_is_not_an_integer_is_wrong_type(double value)
    {
        var (points, rejected) = Run(Num("env-0001", "seq", value), Num("env-0001", "pm2_5", 3));

        Assert.Equal(1, rejected);
        Assert.Equal("seq", Quarantined(QuarantineReasons.WrongType).Field);
        Assert.Single(Assert.Single(points).Fields);
    }

    [Fact]
    public void Custom_string_and_boolean_reject_other_kinds()
    {
        var (_, rejected) = Run(Num("env-0001", "fw", 1), Num("env-0001", "door", 1));
        Assert.Equal(2, rejected);
        Assert.Equal(2, _quarantine.CountsByReason[QuarantineReasons.WrongType]);
    }

    [Fact]
    public void Out_of_bounds_is_quarantined_after_conversion_and_the_rest_is_kept()
    {
        // 200 °F = 93.3 °C, above the 70 °C limit for air temperature.
        var (points, rejected) = Run(Num("env-0001", "temp_f", 200), Num("env-0001", "pm2_5", -1), Num("env-0001", "no2_ppb", 10));

        Assert.Equal(2, rejected);
        Assert.Equal(2, _quarantine.CountsByReason[QuarantineReasons.OutOfBounds]);
        Assert.Contains(_quarantine.ReadAll(), e => e.Field == "temp_f");
        Assert.Contains(_quarantine.ReadAll(), e => e.Field == "pm2_5");
        Assert.Equal(["no2"], Assert.Single(points).Fields.Select(f => f.Name));
    }

    [Fact]
    public void Bounds_are_inclusive()
    {
        var (points, rejected) = Run(Num("tc-01", "occ", 100), Num("tc-01", "count", 0));
        Assert.Equal(0, rejected);
        Assert.Equal(1, Field(Assert.Single(points), "occupancy").Float);
    }

    [Fact]
    public void Unknown_unit_is_quarantined_and_the_rest_is_kept()
    {
        var (points, rejected) = Run(Num("env-0001", "pm2_5", 3, unit: "furlongs"), Num("env-0001", "temp_f", 50));

        Assert.Equal(1, rejected);
        var e = Quarantined(QuarantineReasons.UnknownUnit);
        Assert.Equal("pm2_5", e.Field);
        Assert.Contains("furlongs", e.Detail);
        Assert.Equal(10, Field(Assert.Single(points), "temperature").Float, 9);
    }

    [Fact]
    public void Time_too_far_in_the_future_is_clock_skew()
    {
        var (points, rejected) = Run(
            Num("env-0001", "pm2_5", 3, ts: Now + 6 * 60 * Second),
            Num("env-0001", "temp_f", 50, ts: Now + 4 * 60 * Second));   // within MaxFutureSkew

        Assert.Equal(1, rejected);
        Assert.Equal("pm2_5", Quarantined(QuarantineReasons.ClockSkew).Field);
        var p = Assert.Single(points);
        Assert.Equal(Now + 4 * 60 * Second, p.TimestampNs);
        Assert.Equal(["temperature"], p.Fields.Select(f => f.Name));
    }

    [Fact]
    public void Time_older_than_max_age_is_clock_skew()
    {
        long day = 86_400 * Second;
        var (points, rejected) = Run(
            Num("env-0001", "pm2_5", 3, ts: Now - 8 * day),
            Num("env-0001", "temp_f", 50, ts: Now - 6 * day));

        Assert.Equal(1, rejected);
        Assert.Equal("pm2_5", Quarantined(QuarantineReasons.ClockSkew).Field);
        Assert.Equal(Now - 6 * day, Assert.Single(points).TimestampNs);
    }

    [Fact]
    public void Invalid_reading_is_quarantined_with_its_own_reason()
    {
        var (points, rejected) = Run(
            Reading.Invalid("env-0001", "pm2_5", QuarantineReasons.NonFinite, "'pm2_5' = 1e999 is not a finite number", Now),
            Num("env-0001", "temp_f", 50));

        Assert.Equal(1, rejected);
        var e = Quarantined(QuarantineReasons.NonFinite);
        Assert.Equal("pm2_5", e.Field);
        Assert.Equal("json:city/#", e.Route);
        Assert.Single(points);
    }

    [Fact]
    public void Tag_with_control_characters_rejects_the_point()
    {
        var (points, rejected) = Run(Num("tc-01", "count", 1, tags: [new("lane", "1\n2")]));
        Assert.Equal(1, rejected);
        Assert.Equal("lane", Quarantined(QuarantineReasons.WrongType).Field);
        Assert.Empty(points);
    }

    [Fact]
    public void Every_field_rejected_writes_no_point()
    {
        var (points, rejected) = Run(Num("env-0001", "temp_f", 1000), Num("env-0001", "mystery", 1));
        Assert.Equal(2, rejected);
        Assert.Empty(points);
    }

    [Fact]
    public void Points_already_in_the_list_are_left_alone()
    {
        var earlier = new Point("water", [new("city", "x"), new("device", "w-1")], Now);
        earlier.Fields.Add(PointField.Of("flow", 1.0));
        var points = new List<Point> { earlier };

        _normaliser.Normalise(_frame, _route, [Num("env-0001", "temp_f", 1000)], points, _quarantine);

        Assert.Same(earlier, Assert.Single(points));
    }
}
