using Microsoft.Extensions.Options;

namespace CityGateway.Storage.Influx;

public static class InfluxRegistration
{
    /// <summary>The InfluxDB writer (section Gateway:Influx) and the queues into it. The data path
    /// (Pipeline/DataPath.cs) starts and stops it; the pipeline registers the queues into it.</summary>
    public static IServiceCollection AddInfluxWriter(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<InfluxOptions>().Bind(gateway.GetSection("Influx")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<InfluxOptions>, InfluxOptionsValidator>();
        services.AddSingleton(sp => new InfluxClient(sp.GetRequiredService<IOptions<InfluxOptions>>().Value));
        services.AddSingleton<InfluxState>();
        services.AddSingleton<InfluxWriterService>();
        return services;
    }
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class InfluxOptionsValidator : IValidateOptions<InfluxOptions>
{
    public ValidateOptionsResult Validate(string? name, InfluxOptions o)
    {
        var errors = new List<string>();
        if (!Uri.TryCreate(o.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            errors.Add($"Gateway:Influx:Url: '{o.Url}' is not an http(s) URL");
        if (o.Version is not ("v1" or "v2" or "v3")) errors.Add($"Gateway:Influx:Version: '{o.Version}' is not v1, v2 or v3");
        if (o.Version == "v2" && string.IsNullOrWhiteSpace(o.Org)) errors.Add("Gateway:Influx:Org: required for v2");
        if (o.Version is "v2" or "v3" && string.IsNullOrWhiteSpace(o.Token)) errors.Add($"Gateway:Influx:Token: required for {o.Version}");
        if (string.IsNullOrWhiteSpace(o.Database) && string.IsNullOrWhiteSpace(o.Bucket)) errors.Add("Gateway:Influx:Database: missing");
        if (o.BatchSize < 1) errors.Add("Gateway:Influx:BatchSize: must be at least 1");
        if (o.FlushIntervalMs < 10) errors.Add("Gateway:Influx:FlushIntervalMs: must be at least 10");
        if (o.LingerMs < 0 || o.LingerMs > 10_000) errors.Add($"Gateway:Influx:LingerMs: {o.LingerMs} is out of range; 0 (send at once) to 10000, default 50");
        if (o.RetryMinMs < 1 || o.RetryMaxMs < o.RetryMinMs) errors.Add("Gateway:Influx:RetryMinMs/RetryMaxMs: need 1 <= min <= max");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
