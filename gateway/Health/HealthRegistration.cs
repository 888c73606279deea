using CityGateway.Core;

namespace CityGateway.Health;

public static class HealthRegistration
{
    /// <summary>What every stage shares: the clock, the string pool, the counters and the component
    /// states; and the services that write the gateway's own measurements (section Gateway:SelfMetrics).</summary>
    public static IServiceCollection AddGatewayCore(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<GatewayClock>();
        services.AddSingleton(new StringPool(StringPool.ProcessCapacity));
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<GatewayHealth>();
        services.AddOptions<SelfMetricsOptions>().Bind(gateway.GetSection("SelfMetrics"));
        services.AddSingleton<SelfMetricsService>();
        services.AddHostedService(sp => sp.GetRequiredService<SelfMetricsService>());
        services.AddHostedService<SiteCatalogService>();
        return services;
    }
}
