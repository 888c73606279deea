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
        int rejected = Normalise(readings.ToList(), points);
        Assert.Equal(rejected, _quarantine.Total);
        return (points, rejected);
    }

    /// <summary>Normalises and quarantines the rejections, as the pipeline does.</summary>
    private int Normalise(List<Reading> readings, List<Point> points)
    {
        var rejections = new List<Rejection>();
        int rejected = _normaliser.Normalise(_frame, readings, points, rejections);
        foreach (var r in rejections) _quarantine.Add(r.Reason, r.Detail, _frame, _route.ToString(), r.Device, r.Field);
        return rejected;
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

        Normalise([Num("env-0001", "temp_f", 1000)], points);

        Assert.Same(earlier, Assert.Single(points));
    }

    private Normaliser NormaliserWith(Action<DeviceRegistryFile> change)
    {
        var file = RegistryFile();
        change(file);
        var registry = DeviceRegistry.Build(file, "test");
        return new Normaliser(() => registry, new NormalisationOptions { MaxFutureSkew = TimeSpan.FromMinutes(5), MaxAge = TimeSpan.FromDays(7) });
    }

    [Fact]
    public void Rejections_are_handed_to_the_caller_and_nothing_is_quarantined_by_the_normaliser()
    {
        var earlier = new Rejection("no_route", "from an earlier frame", null);
        var rejections = new List<Rejection> { earlier };
        var points = new List<Point>();

        int rejected = _normaliser.Normalise(_frame, [Num("env-0009", "pm2_5", 1), Num("env-0001", "pm2_5", -1), Num("env-0001", "temp_f", 68)],
            points, rejections);

        Assert.Equal(2, rejected);
        Assert.Equal(earlier, rejections[0]);
        Assert.Equal(new Rejection(QuarantineReasons.UnknownDevice, "device 'env-0009' is not in the device registry", "env-0009"), rejections[1]);
        Assert.Equal((QuarantineReasons.OutOfBounds, "env-0001", "pm2_5"), (rejections[2].Reason, rejections[2].Device, rejections[2].Field));
        Assert.Equal(["temperature"], Assert.Single(points).Fields.Select(f => f.Name));
        Assert.Equal(0, _quarantine.Total);
        Assert.Empty(_quarantine.ReadAll());
    }

    [Fact]
    public void Converted_values_are_rounded_to_the_metric_resolution_and_canonical_ones_are_stored_as_received()
    {
        var normaliser = NormaliserWith(f => f.DeviceTypes["counter"].Fields["level"] = new FieldMapping { Metric = "occupancy" });
        var points = new List<Point>();
        normaliser.Normalise(_frame, [Num("tc-01", "occ", 2.6), Num("tc-01", "speed", 0.1)], points, []);

        var p = Assert.Single(points);
        Assert.Equal(0.026, Field(p, "occupancy").Float);              // 2.6 * 0.01 is 0.026000000000000002
        Assert.Equal(0.160934, Field(p, "averageVehicleSpeed").Float); // 0.1609344 km/h, to the 0.000001 of the metric

        points.Clear();
        normaliser.Normalise(_frame, [Num("tc-01", "level", 0.123456789123), Num("env-0001", "pm2_5", 12.3456789, unit: "ug/m3")], points, []);
        Assert.Equal(0.123456789123, Field(points[0], "occupancy").Float);
        Assert.Equal(12.3456789, Field(points[1], "pm25").Float);
    }

    [Fact]
    public void Every_metric_states_a_resolution()
    {
        Assert.All(MetricCatalog.Default.All, m => Assert.InRange(m.Decimals, 0, 15));
        Assert.True(MetricCatalog.Default.TryGet("water", "waterLevel", out var level));
        Assert.Equal(3.999, level.Round(399.9 * 0.01));                // 3.9989999999999997 before rounding
    }

    [Fact]
    public void Custom_field_with_a_unit_is_stored_in_the_canonical_unit()
    {
        var normaliser = NormaliserWith(f =>
        {
            var fields = f.DeviceTypes["env-sensor"].Fields;
            fields["box_f"] = new FieldMapping { Metric = "enclosureTemperature", Custom = true, Unit = "°F" };
            fields["box_c"] = new FieldMapping { Metric = "enclosureTemperatureC", Custom = true, Unit = "Cel" };
            fields["cars"] = new FieldMapping { Metric = "queueLength", Custom = true, Type = "integer", Unit = "vehicles" };
        });
        var points = new List<Point>();
        var rejections = new List<Rejection>();
        normaliser.Normalise(_frame,
            [Num("env-0001", "box_f", 212), Num("env-0001", "box_c", 300, unit: "K"), Num("env-0001", "cars", 7), Num("env-0001", "rssi", -80, unit: "dBm")],
            points, rejections);

        Assert.Empty(rejections);
        var p = Assert.Single(points);
        Assert.Equal(PointField.Of("enclosureTemperature", 100.0), Field(p, "enclosureTemperature"));
        Assert.Equal(PointField.Of("enclosureTemperatureC", 26.85), Field(p, "enclosureTemperatureC")); // 300 K, the payload's unit
        Assert.Equal(PointField.Of("queueLength", 7L), Field(p, "queueLength"));
        Assert.Equal(PointField.Of("rssi", -80.0), Field(p, "rssi"));   // no unit declared: stored as sent

        points.Clear();
        normaliser.Normalise(_frame, [Num("env-0001", "box_f", 1, unit: "furlongs"), Num("env-0001", "cars", 7, unit: "mph")], points, rejections);
        Assert.Empty(points);
        Assert.Equal([QuarantineReasons.UnknownUnit, QuarantineReasons.UnknownUnit], rejections.Select(r => r.Reason));
        Assert.Equal("no conversion from 'furlongs' to enclosureTemperature's unit 'Cel'", rejections[0].Detail);
    }
}
