using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Normalisation;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using Microsoft.Extensions.Options;
using CityGateway.Storage.Influx;

namespace CityGateway.Pipeline;

public static class PipelineRegistration
{
    /// <summary>
    /// Routes, decoders and the normaliser with its device registry (sections Gateway:Routes,
    /// Gateway:Registry, Gateway:Normalisation, Gateway:Pipeline), the pipeline between journal and
    /// writer, and the <see cref="DataPath"/> that starts and stops sources, pipeline and writer in order.
    /// </summary>
    public static IServiceCollection AddPipeline(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<RoutesOptions>().Configure(o => gateway.GetSection("Routes").Bind(o.Routes)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RoutesOptions>, RoutesOptionsValidator>();
        // devices.json only when no file is configured at all: Paths alone is a registry of its own,
        // and Path set empty (with no Paths) is refused as not set.
        services.AddOptions<RegistryOptions>().Bind(gateway.GetSection("Registry"))
            .PostConfigure(o => { if (gateway["Registry:Path"] is null && o.Paths.Count == 0) o.Path = RegistryOptions.DefaultPath; })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<RegistryOptions>, RegistryOptionsValidator>();
        services.AddOptions<NormalisationOptions>().Bind(gateway.GetSection("Normalisation"));
        services.AddOptions<PipelineOptions>().Bind(gateway.GetSection("Pipeline")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<PipelineOptions>, PipelineOptionsValidator>();

        services.AddSingleton(new DecoderCatalog());
        // Serial ports first: each has a route of its own, for its frames only.
        services.AddSingleton(sp => new RouteTable(
            sp.GetRequiredService<IOptions<SerialOptions>>().Value.Ports.Select(p => p.ToRoute())
                .Concat(sp.GetRequiredService<IOptions<RoutesOptions>>().Value.Routes),
            sp.GetRequiredService<DecoderCatalog>()));
        services.AddSingleton<RegistryHolder>();
        services.AddHostedService(sp => sp.GetRequiredService<RegistryHolder>());
        services.AddSingleton(sp =>
        {
            var registry = sp.GetRequiredService<RegistryHolder>();
            return new Normaliser(() => registry.Current, sp.GetRequiredService<IOptions<NormalisationOptions>>().Value);
        });
        // The queue into the writer is bounded by the pipeline's setting: it is where decoding waits.
        services.AddSingleton(sp => new WriterQueues(sp.GetRequiredService<IOptions<PipelineOptions>>().Value.FrameQueueCapacity));
        services.AddSingleton<PipelineService>();
        services.AddHostedService<DataPath>();
        return services;
    }
}

/// <summary>The configured routes (section Gateway:Routes, a list).</summary>
public sealed class RoutesOptions
{
    public List<TopicRoute> Routes { get; set; } = [];
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class RoutesOptionsValidator(DecoderCatalog decoders, IOptions<MqttConnectionOptions> mqtt, IOptions<SerialOptions> serial)
    : IValidateOptions<RoutesOptions>
{
    public ValidateOptionsResult Validate(string? name, RoutesOptions o)
    {
        var errors = new List<string>();
        if (mqtt.Value.Enabled && o.Routes.Count == 0)
            errors.Add("Gateway:Routes: no routes are configured; nothing would be ingested from MQTT (set Gateway:Mqtt:Enabled=false for a serial-only gateway)");
        if (!mqtt.Value.Enabled && serial.Value.Ports.Count == 0)
            errors.Add("Gateway:Serial:Ports: MQTT is off and no serial port is configured; nothing would be ingested");
        for (int i = 0; i < o.Routes.Count; i++)
        {
            var r = o.Routes[i];
            var key = $"Gateway:Routes:{i}";
            if (Topics.ValidateFilter(r.Filter) is { } fe) errors.Add($"{key}:Filter: {fe}");
            else if (r.Source == "mqtt" && Topics.IsShared(r.Filter) && !string.IsNullOrEmpty(mqtt.Value.SharedGroup))
                errors.Add($"{key}:Filter: '{r.Filter}' is already a shared subscription; with Gateway:Mqtt:SharedGroup set, give the plain " +
                           $"filter ('{Topics.Unshared(r.Filter)}') and the gateway subscribes to $share/{mqtt.Value.SharedGroup}/<filter> itself");
            if (string.IsNullOrWhiteSpace(r.Format))
                errors.Add($"{key}:Format: missing; one of {string.Join(", ", decoders.Formats)}");
            else if (!decoders.Contains(r.Format))
                errors.Add($"{key}:Format: unknown payload format '{r.Format}'; known: {string.Join(", ", decoders.Formats)}");
            if (r.Qos is < 0 or > 2) errors.Add($"{key}:Qos: {r.Qos} is not 0, 1 or 2");
            if (r.TimestampFormat is not ("auto" or "unix_s" or "unix_ms" or "unix_us" or "unix_ns" or "iso8601"))
                errors.Add($"{key}:TimestampFormat: '{r.TimestampFormat}' is not auto, unix_s, unix_ms, unix_us, unix_ns or iso8601");
            if (r.DeviceIdFrom is not ("auto" or "devEui" or "name"))
                errors.Add($"{key}:DeviceIdFrom: '{r.DeviceIdFrom}' is not auto, devEui or name");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class RegistryOptionsValidator : IValidateOptions<RegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, RegistryOptions o)
    {
        // The files themselves are loaded and checked once, by the RegistryHolder (GatewayApp.ValidateConfiguration
        // resolves it with the other settings; a host started without that fails on its RegistryException).
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path) && o.Paths.Count == 0)
            errors.Add($"{RegistryOptions.PathKey}: not set; it must name the device registry JSON file " +
                       $"(more files may be listed as {RegistryOptions.PathsKey}:0, :1, ...)");
        for (int i = 0; i < o.Paths.Count; i++)
            if (string.IsNullOrWhiteSpace(o.Paths[i]))
                errors.Add($"{RegistryOptions.PathsKey}:{i}: empty; it must name a device registry JSON file (or be left out)");
        // The same file twice would register each of its devices twice.
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in o.Files())
        {
            var full = Path.GetFullPath(file.Path);
            if (seen.TryGetValue(full, out var first))
                errors.Add($"{file.Key}: '{file.Path}' is already given as {first}; list each registry file once");
            else
                seen[full] = file.Key;
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class PipelineOptionsValidator : IValidateOptions<PipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PipelineOptions o)
    {
        var errors = new List<string>();
        if (o.FrameQueueCapacity < 1) errors.Add("Gateway:Pipeline:FrameQueueCapacity: must be at least 1");
        if (o.PointQueueCapacity is not null)
            errors.Add("Gateway:Pipeline:PointQueueCapacity: no longer read; the queue to the writer is bounded in frames: set Gateway:Pipeline:FrameQueueCapacity (default 10000) instead");
        if (o.MaxPayloadBytes < 1) errors.Add("Gateway:Pipeline:MaxPayloadBytes: must be at least 1");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
