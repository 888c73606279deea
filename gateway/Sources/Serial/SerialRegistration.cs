using CityGateway.Pipeline;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Serial;

public static class SerialRegistration
{
    /// <summary>The serial source (section Gateway:Serial:Ports, a list; none by default).</summary>
    public static IServiceCollection AddSerialSource(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<SerialOptions>().Configure(o => gateway.GetSection("Serial:Ports").Bind(o.Ports)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SerialOptions>, SerialOptionsValidator>();
        services.AddSingleton<SerialStatus>();
        services.AddSingleton<IFrameSource, SerialSource>();
        return services;
    }
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class SerialOptionsValidator : IValidateOptions<SerialOptions>
{
    private static readonly string[] Formats = ["kv", "csv", "jsonl"];

    public ValidateOptionsResult Validate(string? name, SerialOptions o)
    {
        var errors = new List<string>();
        var names = new HashSet<string>();
        for (int i = 0; i < o.Ports.Count; i++)
        {
            var p = o.Ports[i];
            var key = $"Gateway:Serial:Ports:{i}";
            if (string.IsNullOrWhiteSpace(p.Path)) { errors.Add($"{key}:Path: missing (for example /dev/ttyUSB0)"); continue; }
            if (!names.Add(p.EffectiveName)) errors.Add($"{key}:Name: '{p.EffectiveName}' is used by another port");
            if (!Formats.Contains(p.Format)) errors.Add($"{key}:Format: '{p.Format}' is not one of {string.Join(", ", Formats)}");
            if (p.Format == "csv" && p.Columns.Count == 0) errors.Add($"{key}:Columns: a csv port needs its column names");
            if (p.Format == "csv" && p.Columns.Count > 0 && !p.Columns.Contains(p.DeviceField))
                errors.Add($"{key}:Columns: no column named '{p.DeviceField}' (the DeviceField)");
            if (!SerialPortSettings.StandardBaudRates.Contains(p.BaudRate))
                errors.Add($"{key}:BaudRate: {p.BaudRate} is not one of {string.Join(", ", SerialPortSettings.StandardBaudRates)}");
            if (p.DataBits is < 5 or > 8) errors.Add($"{key}:DataBits: {p.DataBits} is not 5, 6, 7 or 8");
            if (p.StopBits is not (1 or 2)) errors.Add($"{key}:StopBits: {p.StopBits} is not 1 or 2");
            if (p.MaxLineBytes < 16) errors.Add($"{key}:MaxLineBytes: must be at least 16");
            if (p.ReadCoalesceMs is < 0 or > 1000) errors.Add($"{key}:ReadCoalesceMs: must be between 0 and 1000");
            if (p.ReopenMinMs < 10 || p.ReopenMaxMs < p.ReopenMinMs) errors.Add($"{key}:ReopenMinMs/ReopenMaxMs: need 10 <= min <= max");
            if (p.TimestampFormat is not ("auto" or "unix_s" or "unix_ms" or "unix_us" or "unix_ns" or "iso8601"))
                errors.Add($"{key}:TimestampFormat: '{p.TimestampFormat}' is not auto, unix_s, unix_ms, unix_us, unix_ns or iso8601");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
