using System.Text;
using System.Text.Json;
using CityGateway.Normalisation;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Normalisation;

/// <summary>The registry file is read as a stream: whatever its size, layout and order, it must give
/// the registry that <see cref="DeviceRegistry.Build"/> gives for the same content.</summary>
public sealed class RegistryLoadingTests : IDisposable
{
    private readonly TempDir _dir = new("registry-load");

    public void Dispose() => _dir.Dispose();

    private string Write(string json, bool bom = false)
    {
        var path = _dir.File($"devices-{Guid.NewGuid():N}.json");
        var bytes = Encoding.UTF8.GetBytes(json);
        File.WriteAllBytes(path, bom ? [0xEF, 0xBB, 0xBF, .. bytes] : bytes);
        return path;
    }

    private static string Refused(string path) => Assert.Throws<RegistryException>(() => DeviceRegistry.LoadFile(path)).Message;

    /// <summary>Thousands of devices over several types, cities, districts and sites: well beyond the reader's 64 KiB buffer.</summary>
    private static DeviceRegistryFile Large(int devices)
    {
        var file = NormaliserTests.RegistryFile();
        string[] districts = ["north", "centre", "harbour", "old-town"];
        for (int i = 0; i < devices; i++)
        {
            file.Devices[$"dev-{i:D5}"] = new DeviceEntry
            {
                Type = i % 3 == 0 ? "counter" : "env-sensor",
                City = i % 7 == 0 ? "gotham" : null,
                District = districts[i % districts.Length],
                Site = $"site-{i % 40}",
                Latitude = i % 5 == 0 ? null : 51.0 + i / 100_000.0,
                Longitude = i % 5 == 0 ? null : -0.1 - i / 100_000.0,
            };
        }
        return file;
    }

    private static void AssertSame(DeviceRegistry expected, DeviceRegistry actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        foreach (var e in expected.Devices)
        {
            Assert.True(actual.TryGet(e.Id, out var a), e.Id);
            Assert.Equal((e.City, e.District, e.Site, e.Domain, e.Type.Name, e.Latitude, e.Longitude),
                (a.City, a.District, a.Site, a.Domain, a.Type.Name, a.Latitude, a.Longitude));
            Assert.Equal(e.Type.Fields.Keys.Order(), a.Type.Fields.Keys.Order());
            foreach (var (name, f) in e.Type.Fields)
            {
                var g = a.Type.Fields[name];
                Assert.Equal((f.FieldName, f.Metric?.Name, f.DefaultUnit, f.CustomType, f.Ignored),
                    (g.FieldName, g.Metric?.Name, g.DefaultUnit, g.CustomType, g.Ignored));
            }
        }
    }

    [Fact]
    public void A_large_file_loads_as_Build_resolves_it_and_repeated_names_are_one_string()
    {
        var file = Large(20_000);
        var path = Write(JsonSerializer.Serialize(file, new JsonSerializerOptions { WriteIndented = true }));
        Assert.True(new FileInfo(path).Length > 1 << 20);

        var loaded = DeviceRegistry.LoadFile(path);

        AssertSame(DeviceRegistry.Build(file, "built"), loaded);
        Assert.True(loaded.TryGet("dev-00001", out var a));
        Assert.True(loaded.TryGet("dev-00041", out var b));
        Assert.Equal("site-1", a.Site);
        Assert.Same(a.Site, b.Site);
        Assert.Same(a.District, b.District);
        Assert.Same(a.City, b.City);
    }

    [Fact]
    public void Order_of_the_sections_does_not_matter()
    {
        var file = Large(500);
        var devices = JsonSerializer.Serialize(file.Devices);
        var types = JsonSerializer.Serialize(file.DeviceTypes);
        var path = Write($$"""{ "devices": {{devices}}, "deviceTypes": {{types}}, "city": "metropolis" }""");

        AssertSame(DeviceRegistry.Build(file, "built"), DeviceRegistry.LoadFile(path));
    }

    [Fact]
    public void Byte_order_mark_escapes_and_unknown_properties_are_read_as_the_serializer_reads_them()
    {
        var path = Write("""
            {
              "city": "metro\u0070olis",
              "comment": { "why": ["anything", 1, true, null] },
              "deviceTypes": { "counter": { "domain": "traffic", "fields": { "count": { "metric": "intensity", "note": "x" } }, "ignore": ["rssi"] } },
              "devices": {
                "caf\u00e9-1": { "type": "counter", "dis\u0074rict": "centre", "site": "quai \"nord\"", "owner": "roads" },
                "plain": { "type": "counter", "district": "centre", "lat": 1e2, "lon": -0.5 }
              }
            }
            """, bom: true);

        var registry = DeviceRegistry.LoadFile(path);

        Assert.True(registry.TryGet("café-1", out var cafe));
        Assert.Equal(("metropolis", "centre", "quai \"nord\""), (cafe.City, cafe.District, cafe.Site));
        Assert.True(registry.TryGet("plain", out var plain));
        Assert.Equal((100.0, -0.5), (plain.Latitude, plain.Longitude));
        Assert.True(plain.Type.Fields["rssi"].Ignored);
    }

    [Fact]
    public void A_value_larger_than_the_read_buffer_is_read_whole()
    {
        var site = new string('s', 200_000);
        var path = Write($$"""{ "city": "c", "deviceTypes": { "t": { "domain": "water" } }, "devices": { "d": { "type": "t", "district": "x", "site": "{{site}}" } } }""");

        Assert.True(DeviceRegistry.LoadFile(path).TryGet("d", out var d));
        Assert.Equal(site, d.Site);
    }

    [Fact]
    public void Entries_of_the_wrong_shape_are_listed_with_every_other_error()
    {
        var path = Write("""
            {
              "city": "metropolis",
              "deviceTypes": {
                "counter": { "domain": "traffic", "fields": { "count": { "metric": "intensity", "custom": "yes" } } },
                "broken": null
              },
              "devices": {
                "a": { "type": "counter", "district": 5 },
                "b": { "type": "counter", "district": "centre", "lat": "north" },
                "c": null,
                "d": { "type": "no-such-type", "district": "centre" }
              }
            }
            """);

        var message = Refused(path);

        Assert.Contains("7 error(s)", message);
        Assert.Contains("deviceTypes.counter.fields.count.custom: must be true or false", message);
        Assert.Contains("deviceTypes.broken: must be an object, not null", message);
        Assert.Contains("devices.a.district: must be a string", message);
        Assert.Contains("devices.a.district: missing", message);
        Assert.Contains("devices.b.lat: must be a number", message);
        Assert.Contains("devices.c: must be an object", message);
        Assert.Contains("devices.d.type: unknown device type 'no-such-type'", message);
    }

    [Fact]
    public void Devices_before_the_types_and_without_any_city_are_still_checked()
    {
        var path = Write("""
            { "devices": { "a": { "type": "t", "district": "x" }, "b": { "type": "t", "district": "x", "city": "own" } },
              "deviceTypes": { "t": { "domain": "water" } } }
            """);

        var message = Refused(path);

        Assert.Contains("1 error(s)", message);
        Assert.Contains("devices.a.city: missing", message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{ \"city\": \"c\", \"devices\": { \"a\": { \"type\": ")]
    [InlineData("{ \"city\": \"c\" } trailing")]
    [InlineData("[]")]
    public void Broken_json_is_refused_as_such(string json)
    {
        Assert.Contains("not valid JSON", Refused(Write(json)));
    }

    [Fact]
    public void Json_null_is_an_empty_registry()
    {
        Assert.Contains("is empty", Refused(Write("null")));
    }
}
