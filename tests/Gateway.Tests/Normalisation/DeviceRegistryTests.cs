using CityGateway.Normalisation;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Normalisation;

public class DeviceRegistryTests
{
    private static RegistryException Refused(Action<DeviceRegistryFile> change)
    {
        var file = NormaliserTests.RegistryFile();
        change(file);
        return Assert.Throws<RegistryException>(() => DeviceRegistry.Build(file, "test-registry"));
    }

    [Fact]
    public void Valid_file_resolves_devices_and_fields()
    {
        var registry = DeviceRegistry.Build(NormaliserTests.RegistryFile(), "test-registry");

        Assert.Equal(2, registry.Count);
        Assert.Equal("test-registry", registry.Source);
        Assert.True(registry.TryGet("env-0001", out var env));
        Assert.Equal(("metropolis", "north", "park-gate", "environment"), (env.City, env.District, env.Site, env.Domain));
        Assert.True(registry.TryGet("tc-01", out var tc));
        Assert.Equal("gotham", tc.City);
        Assert.False(registry.TryGet("ENV-0001", out _)); // ids are case-sensitive

        var temp = env.Type.Fields["temp_f"];
        Assert.Equal(("temperature", "°F"), (temp.FieldName, temp.DefaultUnit));
        Assert.Equal("Cel", temp.Metric!.Unit);
        var seq = env.Type.Fields["seq"];
        Assert.Null(seq.Metric);
        Assert.Equal("integer", seq.CustomType);
        Assert.True(env.Type.Fields["battery"].Ignored);
        Assert.Equal("float", env.Type.Fields["rssi"].CustomType);
    }

    [Fact]
    public void Unknown_domain_names_the_key()
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Domain = "weather");
        Assert.Contains("deviceTypes.env-sensor.domain", e.Message);
        Assert.Contains("'weather'", e.Message);
        Assert.Contains("test-registry", e.Message);
    }

    [Fact]
    public void Unknown_metric_without_custom_names_the_key()
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Fields["lux"] = new FieldMapping { Metric = "illuminance" });
        Assert.Contains("deviceTypes.env-sensor.fields.lux.metric", e.Message);
        Assert.Contains("'illuminance'", e.Message);
        Assert.Contains("custom", e.Message);
    }

    [Fact]
    public void Metric_of_another_domain_is_unknown()
    {
        var e = Refused(f => f.DeviceTypes["counter"].Fields["temp"] = new FieldMapping { Metric = "temperature" });
        Assert.Contains("deviceTypes.counter.fields.temp.metric", e.Message);
    }

    [Fact]
    public void Unconvertible_unit_names_the_key()
    {
        var e = Refused(f => f.DeviceTypes["counter"].Fields["speed"].Unit = "psi");
        Assert.Contains("deviceTypes.counter.fields.speed.unit", e.Message);
        Assert.Contains("'psi'", e.Message);
        Assert.Contains("km/h", e.Message);
    }

    [Fact]
    public void Unknown_device_type_names_the_key()
    {
        var e = Refused(f => f.Devices["wq-1"] = new DeviceEntry { Type = "water-probe", District = "east" });
        Assert.Contains("devices.wq-1.type", e.Message);
        Assert.Contains("'water-probe'", e.Message);
    }

    [Fact]
    public void Missing_metric_names_the_key()
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Fields["x"] = new FieldMapping { Metric = " " });
        Assert.Contains("deviceTypes.env-sensor.fields.x.metric: missing", e.Message);
    }

    [Fact]
    public void Custom_field_with_a_canonical_name_or_an_unknown_type_is_refused()
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Fields["t"] = new FieldMapping { Metric = "temperature", Custom = true });
        Assert.Contains("deviceTypes.env-sensor.fields.t", e.Message);
        e = Refused(f => f.DeviceTypes["env-sensor"].Fields["t"] = new FieldMapping { Metric = "tt", Custom = true, Type = "decimal" });
        Assert.Contains("deviceTypes.env-sensor.fields.t.type", e.Message);
    }

    [Theory]
    [InlineData("occupancy", "traffic")]
    [InlineData("flow", "water")]
    [InlineData("LAeq", "environment")]
    public void Custom_field_named_like_a_canonical_metric_of_any_domain_is_refused(string name, string domain)
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Fields["x"] = new FieldMapping { Metric = name, Custom = true });
        Assert.Contains($"deviceTypes.env-sensor.fields.x: '{name}' is a canonical metric ({domain})", e.Message);
    }

    [Theory]
    [InlineData("float", "furlongs", "'furlongs' is neither a canonical unit")]
    [InlineData("float", "ppb", "molar mass")]
    [InlineData("integer", "°F", "'°F' converts to 'Cel', which an integer cannot hold exactly")]
    [InlineData("string", "Cel", "a unit needs type float or integer, not string")]
    public void Custom_field_with_a_unit_that_cannot_be_stored_canonically_is_refused(string type, string unit, string because)
    {
        var e = Refused(f => f.DeviceTypes["env-sensor"].Fields["box"] = new FieldMapping { Metric = "boxTemp", Custom = true, Type = type, Unit = unit });
        Assert.Contains("deviceTypes.env-sensor.fields.box.unit: custom field 'boxTemp' of device type 'env-sensor'", e.Message);
        Assert.Contains(because, e.Message);
    }

    [Fact]
    public void Custom_field_with_a_unit_resolves_its_canonical_unit()
    {
        var file = NormaliserTests.RegistryFile();
        file.DeviceTypes["env-sensor"].Fields["box"] = new FieldMapping { Metric = "boxPressure", Custom = true, Unit = "psi" };
        var registry = DeviceRegistry.Build(file, "test-registry");
        Assert.True(registry.TryGet("env-0001", out var env));
        var box = env.Type.Fields["box"];
        Assert.Null(box.Metric);
        Assert.Equal(("psi", "bar", 6), (box.DefaultUnit, box.CustomUnit!.Unit, box.CustomUnit.Decimals));
        Assert.Null(env.Type.Fields["rssi"].CustomUnit);
    }

    [Fact]
    public void Device_without_city_or_district_is_refused()
    {
        var e = Refused(f =>
        {
            f.City = null;
            f.Devices["env-0001"].District = "";
        });
        Assert.Contains("devices.env-0001.city", e.Message);
        Assert.Contains("devices.env-0001.district", e.Message);
        Assert.DoesNotContain("devices.tc-01", e.Message); // tc-01 names its own city
    }

    [Fact]
    public void Control_characters_in_ids_are_refused()
    {
        var e = Refused(f => f.Devices["bad\nid"] = new DeviceEntry { Type = "counter", District = "centre" });
        Assert.Contains("contains control characters", e.Message);
    }

    [Fact]
    public void Every_error_is_listed()
    {
        var e = Refused(f =>
        {
            f.DeviceTypes["env-sensor"].Fields["lux"] = new FieldMapping { Metric = "illuminance" };
            f.DeviceTypes["counter"].Fields["speed"].Unit = "psi";
            f.Devices["wq-1"] = new DeviceEntry { Type = "water-probe", District = "east" };
        });
        Assert.Contains("3 error(s)", e.Message);
    }

    [Fact]
    public void LoadFile_reads_json_with_comments_and_reports_bad_files()
    {
        using var dir = new TempDir("registry");
        var path = dir.File("devices.json");
        File.WriteAllText(path, """
            {
              // shared by every device
              "city": "metropolis",
              "deviceTypes": { "counter": { "domain": "traffic", "fields": { "count": { "metric": "intensity" } } } },
              "devices": { "tc-01": { "type": "counter", "district": "centre", "site": "s1", "lat": 51.5, "lon": -0.12 }, },
            }
            """);
        var registry = DeviceRegistry.LoadFile(path);
        Assert.True(registry.TryGet("tc-01", out var d));
        Assert.Equal((51.5, -0.12), (d.Latitude!.Value, d.Longitude!.Value));

        File.WriteAllText(path, "{ not json");
        Assert.Contains("not valid JSON", Assert.Throws<RegistryException>(() => DeviceRegistry.LoadFile(path)).Message);
        Assert.Contains("cannot read", Assert.Throws<RegistryException>(() => DeviceRegistry.LoadFile(dir.File("missing.json"))).Message);
    }
}
