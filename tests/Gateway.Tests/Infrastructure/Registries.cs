using System.Text.Json;
using CityGateway.Normalisation;

namespace CityGateway.Tests.Infrastructure;

/// <summary>Small device registries written for a test.</summary>
public static class Registries
{
    public static DeviceRegistryFile Environment(params string[] devices)
    {
        var file = new DeviceRegistryFile { City = "lumen" };
        file.DeviceTypes["aq-us"] = new DeviceTypeEntry
        {
            Domain = "environment",
            Fields =
            {
                ["pm25"] = new FieldMapping { Metric = "pm25", Unit = "ug/m3" },
                ["temp_f"] = new FieldMapping { Metric = "temperature", Unit = "degF" },
                ["no2_ppb"] = new FieldMapping { Metric = "no2", Unit = "ppb" },
                ["seq"] = new FieldMapping { Metric = "seq", Custom = true, Type = "integer" },
            },
        };
        foreach (var d in devices)
            file.Devices[d] = new DeviceEntry { Type = "aq-us", District = "centre", Site = "market-square" };
        return file;
    }

    public static string Write(DeviceRegistryFile file, string path)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(file, new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }
}
