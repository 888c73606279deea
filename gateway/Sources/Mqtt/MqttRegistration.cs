using CityGateway.Pipeline;
using CityGateway.Routing;
using Microsoft.Extensions.Options;

namespace CityGateway.Sources.Mqtt;

public static class MqttRegistration
{
    /// <summary>The MQTT source (section Gateway:Mqtt); the connection settings are validated even
    /// when the source is off (Gateway:Mqtt:Enabled=false), since other parts read the client id.</summary>
    public static IServiceCollection AddMqttSource(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<MqttConnectionOptions>().Bind(gateway.GetSection("Mqtt")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<MqttConnectionOptions>, MqttOptionsValidator>();
        // Registered with the source off too: /readyz, the instruments and the gateway measurement read it.
        services.AddSingleton<BrokerState>();
        if (gateway.GetValue("Mqtt:Enabled", true))
        {
            services.AddSingleton<IMqttConnection, MqttNetConnection>();
            services.AddSingleton<IFrameSource, MqttSource>();
        }
        return services;
    }
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class MqttOptionsValidator : IValidateOptions<MqttConnectionOptions>
{
    public ValidateOptionsResult Validate(string? name, MqttConnectionOptions o)
    {
        var errors = new List<string>();
        if (!o.Enabled) return ValidateOptionsResult.Success;
        if (string.IsNullOrWhiteSpace(o.Url))
            errors.Add("Gateway:Mqtt:Url: the broker URL is missing (for example mqtt://127.0.0.1:1883)");
        else
        {
            try { o.ParseUrl(); }
            catch (FormatException e) { errors.Add($"Gateway:Mqtt:Url: {e.Message}"); }
        }
        if (string.IsNullOrWhiteSpace(o.ClientId)) errors.Add("Gateway:Mqtt:ClientId: must not be empty (a persistent session is bound to it)");
        if (o.ProtocolVersion is not (4 or 5)) errors.Add($"Gateway:Mqtt:ProtocolVersion: {o.ProtocolVersion} is not 5 or 4 (3.1.1)");
        if (!string.IsNullOrEmpty(o.SharedGroup) && Topics.ValidateShareName(o.SharedGroup) is { } share)
            errors.Add($"Gateway:Mqtt:SharedGroup: {share}; leave it empty for ordinary subscriptions");
        if (o.SocketBufferBytes is < 4096 or > 16 * 1024 * 1024)
            errors.Add($"Gateway:Mqtt:SocketBufferBytes: {o.SocketBufferBytes} is outside 4096 to 16777216 (default 262144, 256 KiB)");
        if (o.MaxInflight < 0)
            errors.Add($"Gateway:Mqtt:MaxInflight: {o.MaxInflight} is negative (0: the broker's default; default 1000)");
        if (o.KeepAliveSeconds < 5) errors.Add("Gateway:Mqtt:KeepAliveSeconds: must be at least 5");
        if (o.ReconnectMinSeconds < 1 || o.ReconnectMaxSeconds < o.ReconnectMinSeconds)
            errors.Add("Gateway:Mqtt:ReconnectMinSeconds/ReconnectMaxSeconds: need 1 <= min <= max");
        foreach (var (key, path) in new[] { ("CaFile", o.Tls.CaFile), ("CertFile", o.Tls.CertFile), ("KeyFile", o.Tls.KeyFile) })
            if (!string.IsNullOrEmpty(path) && !File.Exists(path)) errors.Add($"Gateway:Mqtt:Tls:{key}: file '{path}' does not exist");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
