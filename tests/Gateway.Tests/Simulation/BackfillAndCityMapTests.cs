using System.Text.Json;
using CityGateway.Cli;
using CityGateway.Normalisation;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Simulation;

/// <summary>
/// The fleet simulator's backfill and city options without a broker: durations as written on the
/// command line, the refusals, a city of its own in the written registry, and backfilled values
/// that follow the daily curves at their own timestamps.
/// </summary>
public sealed class BackfillAndCityMapTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CommandLineRunner.RunAsync(SimulatorCommand.CreateRoot(), args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("2h", 2 * 3600)]
    [InlineData("90m", 90 * 60)]
    [InlineData("1h30m", 90 * 60)]
    [InlineData("00:45:00", 45 * 60)]
    [InlineData("1:02:03", 3723)]
    [InlineData("2.01:00:00", 2 * 86400 + 3600)]
    [InlineData("1d12h", 36 * 3600)]
    [InlineData("1.5h", 90 * 60)]
    [InlineData("45s", 45)]
    [InlineData("1H30M", 90 * 60)]
    [InlineData(" 6d23h ", 6 * 86400 + 23 * 3600)]
    public void Durations_are_read_as_written(string text, int seconds)
    {
        Assert.True(DurationText.TryParse(text, out var value, out var error), error);
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
        Assert.True(DurationText.TryParse(DurationText.Format(value), out var again, out _));
        Assert.Equal(value, again);
    }

    [Theory]
    [InlineData("", "not ''")]
    [InlineData("90", "needs a unit (d, h, m or s), as in 90s or 90m")]
    [InlineData("1h30", "needs a unit (d, h, m or s) after '30'")]
    [InlineData("2x", "units d, h, m, s, largest first, each once")]
    [InlineData("30m1h", "largest first")]
    [InlineData("1h1h", "each once")]
    [InlineData("1h 30m", "not '1h 30m'")]
    [InlineData("-1h", "not '-1h'")]
    [InlineData("h", "not 'h'")]
    [InlineData("1..5h", "not '1..5h'")]
    [InlineData("12:30", "h:mm:ss or d.hh:mm:ss")]
    [InlineData("1:99:00", "h:mm:ss or d.hh:mm:ss")]
    [InlineData("99999d", "too long")]
    public void Junk_durations_are_refused_with_the_reason(string text, string message)
    {
        Assert.False(DurationText.TryParse(text, out _, out var error));
        Assert.Contains(message, error);
    }

    [Fact]
    public void The_backfill_and_city_options_parse_to_the_settings_they_name()
    {
        var o = SimulatorCommand.Parse(["--backfill", "1h30m", "--backfill-interval", "30s", "--backfill-qos", "2", "--qos", "0",
            "--city", "sister", "--districts", "quay, uplands,mill-lane", "--centre", "-33.92,18.42"]).Options;
        Assert.Equal(TimeSpan.FromMinutes(90), o.Backfill);
        Assert.Equal(TimeSpan.FromSeconds(30), o.BackfillInterval);
        Assert.Equal((2, 0), (o.BackfillQos, o.Qos));
        Assert.Equal("sister", o.City);
        Assert.Equal(["quay", "uplands", "mill-lane"], o.Districts);
        Assert.Equal((-33.92, 18.42), (o.CentreLatitude!.Value, o.CentreLongitude!.Value));

        // Without the options: no backfill, one reading a minute and QoS 1 when there is one, the default city.
        var defaults = SimulatorCommand.Parse([]).Options;
        Assert.Null(defaults.Backfill);
        Assert.Equal((TimeSpan.FromMinutes(1), 1), (defaults.BackfillInterval, defaults.BackfillQos));
        Assert.Null(defaults.Districts);
        Assert.Null(defaults.CentreLatitude);
        Assert.Equal(TimeSpan.FromDays(6) + TimeSpan.FromHours(23),
            SimulatorCommand.Parse(["--backfill", "6d23h"]).Options.Backfill);
    }

    [Theory]
    [InlineData(new[] { "--backfill", "90" }, "--backfill needs a unit")]
    [InlineData(new[] { "--backfill", "soon" }, "--backfill expects a duration such as 2h, 90m, 1h30m or 00:45:00")]
    [InlineData(new[] { "--backfill", "7d" }, "Gateway:Normalisation:MaxAge")]
    [InlineData(new[] { "--backfill", "8d" }, "--backfill must be shorter than 7d, not 8d")]
    [InlineData(new[] { "--backfill", "0s" }, "--backfill must be positive")]
    [InlineData(new[] { "--backfill", "1h", "--backfill-interval", "2h" }, "--backfill-interval (2h) must not be longer than --backfill (1h)")]
    [InlineData(new[] { "--backfill", "1h", "--backfill-interval", "500ms" }, "--backfill-interval expects a duration")]
    [InlineData(new[] { "--backfill", "1h", "--backfill-interval", "0.5s" }, "--backfill-interval must be at least 1s")]
    [InlineData(new[] { "--backfill-interval", "1m" }, "need --backfill")]
    [InlineData(new[] { "--backfill", "1h", "--backfill-qos", "3" }, "--backfill-qos must be at most 2")]
    [InlineData(new[] { "--districts", "Quay,uplands" }, "--districts: 'Quay' is not a district name")]
    [InlineData(new[] { "--districts", "quay,,uplands" }, "--districts: '' is not a district name")]
    [InlineData(new[] { "--districts", "quay_1" }, "'quay_1' is not a district name")]
    [InlineData(new[] { "--districts", "quay,uplands,quay" }, "'quay' is given more than once")]
    [InlineData(new[] { "--centre", "91,18" }, "--centre: the latitude must be from -90 to 90, not 91")]
    [InlineData(new[] { "--centre", "-33.9,180.5" }, "--centre: the longitude must be from -180 to 180, not 180.5")]
    [InlineData(new[] { "--centre", "-33.9" }, "--centre expects LAT,LON in decimal degrees")]
    [InlineData(new[] { "--centre", "north,south" }, "--centre expects LAT,LON")]
    [InlineData(new[] { "--centre", "1,2,3" }, "--centre expects LAT,LON")]
    public async Task Wrong_backfill_and_city_options_exit_2_and_say_what_is_wrong(string[] args, string message)
    {
        var (code, output, error) = await RunAsync([.. args, "--registry-only"]);
        Assert.Equal(SimulatorCommand.ExitUsage, code);
        Assert.Equal("", output);
        Assert.Contains(message, error);
    }

    [Fact]
    public void A_backfill_of_the_gateways_maximum_age_is_refused_in_process_too()
    {
        var o = new SimulatorOptions { Backfill = TimeSpan.FromDays(7) };
        var e = Assert.Throws<ArgumentException>(o.Validate);
        Assert.Contains("Gateway:Normalisation:MaxAge", e.Message);
        o.Backfill = TimeSpan.FromDays(7) - TimeSpan.FromMinutes(1);
        o.Validate();
    }

    [Fact]
    public async Task A_city_of_its_own_is_in_the_written_registry()
    {
        using var dir = new TempDir("city-map");
        string[] districts = ["quay", "uplands", "mill-lane", "harbour"];
        string[] args = ["--city", "sister", "--districts", string.Join(",", districts), "--centre", "-33.92,18.42",
            "--traffic", "30", "--water", "30", "--environment", "30", "--seed", "5", "--registry-only"];
        var first = await RunAsync([.. args, "--registry", dir.File("a.json")]);
        Assert.Equal(0, first.Code);
        var second = await RunAsync([.. args, "--registry", dir.File("b.json")]);
        Assert.Equal(0, second.Code);
        var text = File.ReadAllText(dir.File("a.json"));
        Assert.Equal(text, File.ReadAllText(dir.File("b.json")));

        var registry = JsonSerializer.Deserialize<DeviceRegistryFile>(text)!;
        Assert.Equal("sister", registry.City);
        Assert.Equal(90, registry.Devices.Count);
        // Every district is used, and only these.
        Assert.Equal(districts.Order(), registry.Devices.Values.Select(d => d.District).Distinct().Order());
        foreach (var (id, d) in registry.Devices)
        {
            Assert.InRange(d.Latitude!.Value, -33.92 - 0.04, -33.92 + 0.04);
            Assert.InRange(d.Longitude!.Value, 18.42 - 0.055, 18.42 + 0.055);
        }
        // Devices of one district sit together: their spread is the district's, not the city's.
        foreach (var group in registry.Devices.Values.GroupBy(d => d.District))
        {
            Assert.True(group.Max(d => d.Latitude!.Value) - group.Min(d => d.Latitude!.Value) <= 0.008 + 1e-9, group.Key);
            Assert.True(group.Max(d => d.Longitude!.Value) - group.Min(d => d.Longitude!.Value) <= 0.011 + 1e-9, group.Key);
        }
        // A default district keeps its offset from the centre.
        var harbour = registry.Devices.Values.Where(d => d.District == "harbour").ToList();
        Assert.NotEmpty(harbour);
        Assert.All(harbour, d => Assert.InRange(d.Latitude!.Value - -33.92, -0.016 - 0.004 - 1e-9, -0.016 + 0.004 + 1e-9));

        // A different seed places the new districts elsewhere; the devices keep their ids.
        var other = await RunAsync([.. args[..^3], "--seed", "6", "--registry-only", "--registry", dir.File("c.json")]);
        Assert.Equal(0, other.Code);
        var moved = JsonSerializer.Deserialize<DeviceRegistryFile>(File.ReadAllText(dir.File("c.json")))!;
        Assert.Equal(registry.Devices.Keys.Order(), moved.Devices.Keys.Order());
        Assert.NotEqual(text, File.ReadAllText(dir.File("c.json")));
    }

    [Fact]
    public async Task A_serial_instrument_of_a_city_of_its_own_is_placed_in_that_citys_districts()
    {
        using var dir = new TempDir("serial-city-map");
        string[] districts = ["pelabuhan", "kota-lama", "pasar-baru"];
        var (code, _, error) = await RunAsync(["serial", "--format", "kv", "--devices", "12", "--city", "samudra",
            "--districts", string.Join(",", districts), "--centre", "-6.12,106.83", "--seed", "9", "--registry-only", "--registry", dir.File("s.json")]);
        Assert.True(code == 0, error);
        var registry = JsonSerializer.Deserialize<DeviceRegistryFile>(File.ReadAllText(dir.File("s.json")))!;
        Assert.Equal("samudra", registry.City);
        Assert.Equal(12, registry.Devices.Count);
        Assert.All(registry.Devices.Values, d => Assert.Contains(d.District, districts));
        Assert.All(registry.Devices.Values, d => Assert.InRange(d.Latitude!.Value, -6.12 - 0.04, -6.12 + 0.04));

        // Without them, the serial instruments stay in the default city, as before.
        var (plainCode, _, plainError) = await RunAsync(["serial", "--format", "kv", "--devices", "12", "--seed", "9", "--registry-only", "--registry", dir.File("p.json")]);
        Assert.True(plainCode == 0, plainError);
        var plain = JsonSerializer.Deserialize<DeviceRegistryFile>(File.ReadAllText(dir.File("p.json")))!;
        Assert.All(plain.Devices.Values, d => Assert.Contains(d.District, Fleet.Districts));
    }

    [Fact]
    public void Naming_the_default_districts_and_centre_gives_the_default_city()
    {
        var plain = new SimulatorOptions { TrafficDevices = 20, WaterDevices = 20, EnvironmentDevices = 20, Seed = 11 };
        var named = new SimulatorOptions
        {
            TrafficDevices = 20, WaterDevices = 20, EnvironmentDevices = 20, Seed = 11,
            Districts = [.. Fleet.Districts], CentreLatitude = Fleet.CentreLatitude, CentreLongitude = Fleet.CentreLongitude,
        };
        Assert.Equal(FleetSimulator.SerializeRegistry(FleetSimulator.BuildRegistry(plain)),
            FleetSimulator.SerializeRegistry(FleetSimulator.BuildRegistry(named)));
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        Assert.Equal(
            FleetSimulator.Generate(new SimulatorOptions { Seed = 11, MessagesPerDevice = 2 }, start, TimeSpan.FromSeconds(1)).Select(m => Convert.ToBase64String(m.Payload)),
            FleetSimulator.Generate(new SimulatorOptions { Seed = 11, MessagesPerDevice = 2, Districts = [.. Fleet.Districts] }, start, TimeSpan.FromSeconds(1)).Select(m => Convert.ToBase64String(m.Payload)));
    }

    [Fact]
    public void A_backfills_size_is_one_reading_per_device_per_interval()
    {
        var o = new SimulatorOptions { TrafficDevices = 3, WaterDevices = 3, EnvironmentDevices = 4, Backfill = TimeSpan.FromHours(2) };
        Assert.Equal(TimeSpan.FromSeconds(6), FleetSimulator.BackfillFleetInterval(o, 10));
        Assert.Equal(10 * 120, FleetSimulator.BackfillCount(o, 10));
        o.BackfillInterval = TimeSpan.FromSeconds(45);
        Assert.Equal(10 * 160, FleetSimulator.BackfillCount(o, 10));
        o.Backfill = null;
        Assert.Equal(0, FleetSimulator.BackfillCount(o, 10));
    }

    [Fact]
    public void Backfilled_values_follow_the_daily_curves_at_their_own_timestamps()
    {
        // A working day in local time, one reading per traffic device per minute, as the backfill produces them.
        var midnight = new DateTimeOffset(new DateTime(2025, 6, 3, 0, 0, 0, DateTimeKind.Local));
        double Intensity(PublishedMessage m) => m.SourceValues.TryGetValue("count", out var c) ? c : m.SourceValues["vehicles"];
        (double Night, double Rush) Means(DateTimeOffset? curveTime)
        {
            var o = new SimulatorOptions
            {
                TrafficDevices = 10, WaterDevices = 0, EnvironmentDevices = 0, Formats = ["json"],
                Duration = TimeSpan.FromHours(24), CurveTime = curveTime, Seed = 3,
            };
            var day = FleetSimulator.Generate(o, midnight, TimeSpan.FromMinutes(1) / 10).ToList();
            Assert.Equal(10 * 24 * 60, day.Count);
            double Mean(int fromMinute, int toMinute) => day
                .Where(m => m.TimestampNs / 1_000_000 - midnight.ToUnixTimeMilliseconds() is var ms && ms >= fromMinute * 60_000L && ms < toMinute * 60_000L)
                .Average(Intensity);
            return (Mean(150, 210), Mean(450, 510)); // 02:30-03:30 and 07:30-08:30
        }

        var own = Means(null);
        Assert.True(own.Rush > 4 * own.Night, $"rush hour {own.Rush:0.0} vehicles against {own.Night:0.0} at night");
        // With the curve time fixed the hour of the timestamp no longer matters.
        var fixedTime = Means(midnight.AddHours(3));
        Assert.True(fixedTime.Rush < 1.5 * fixedTime.Night, $"fixed curve time: {fixedTime.Rush:0.0} against {fixedTime.Night:0.0}");
    }

    [Fact]
    public void Every_payload_format_carries_the_readings_own_timestamp()
    {
        var o = new SimulatorOptions { TrafficDevices = 4, WaterDevices = 4, EnvironmentDevices = 4, MessagesPerDevice = 1 };
        var start = new DateTimeOffset(2025, 6, 3, 1, 2, 3, 456, TimeSpan.Zero);
        var messages = FleetSimulator.Generate(o, start, TimeSpan.FromSeconds(7)).ToList();
        Assert.Equal(["chirpstack", "json", "senml", "tts"], messages.Select(m => m.Format).Distinct().Order());
        foreach (var m in messages)
        {
            using var doc = JsonDocument.Parse(m.Payload);
            var root = doc.RootElement;
            long ms = m.TimestampNs / 1_000_000;
            var expected = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            switch (m.Format)
            {
                case "json":
                    Assert.Equal(ms, root.GetProperty("ts").GetInt64());
                    break;
                case "senml":
                    Assert.Equal(ms / 1000m, root[0].GetProperty("bt").GetDecimal());
                    break;
                case "chirpstack":
                    Assert.Equal(expected, DateTimeOffset.Parse(root.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case "tts":
                    Assert.Equal(expected, DateTimeOffset.Parse(root.GetProperty("uplink_message").GetProperty("received_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
                    Assert.Equal(expected, DateTimeOffset.Parse(root.GetProperty("received_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
                    break;
            }
        }
        Assert.Equal(start, DateTimeOffset.FromUnixTimeMilliseconds(messages[0].TimestampNs / 1_000_000));
    }
}
