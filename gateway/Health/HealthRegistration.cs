using Microsoft.Extensions.Options;
using CityGateway.Core;

namespace CityGateway.Health;

public static class HealthRegistration
{
    /// <summary>What every stage shares: the clock, the string pool, and the counters (each component
    /// registers its own state); and the services that write the gateway's own measurements (section Gateway:SelfMetrics).</summary>
    public static IServiceCollection AddGatewayCore(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<GatewayClock>();
        services.AddSingleton(new StringPool(StringPool.ProcessCapacity));
        services.AddMetrics();
        services.AddSingleton<GatewayMetrics>();
        services.AddOptions<SelfMetricsOptions>().Bind(gateway.GetSection("SelfMetrics"));
        services.AddSingleton<SelfMetricsService>();
        services.AddHostedService(sp => sp.GetRequiredService<SelfMetricsService>());
        services.AddHostedService<SiteCatalogService>();
        return services;
    }

    /// <summary>What operators reach on their own listener (section Gateway:Operations): the health
    /// checks behind /readyz, the instruments behind /metrics and OTLP export (Gateway:Telemetry).</summary>
    public static IServiceCollection AddOperations(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<OperatorListenerOptions>().Bind(gateway.GetSection("Operations")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OperatorListenerOptions>, OperatorListenerOptionsValidator>();
        Telemetry.AddGatewayTelemetry(services, gateway);
        HealthEndpoints.AddHealthChecks(services);
        services.AddHostedService<GatewayStateInstruments>();
        return services;
    }
}
