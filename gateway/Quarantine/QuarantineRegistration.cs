

namespace CityGateway.Quarantine;

public static class QuarantineRegistration
{
    /// <summary>The quarantine store (section Gateway:Quarantine) and the operator settings of its API (Gateway:Operations).</summary>
    public static IServiceCollection AddQuarantine(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<QuarantineOptions>().Bind(gateway.GetSection("Quarantine"));
        services.AddOptions<OperationsOptions>().Bind(gateway.GetSection("Operations"));
        services.AddSingleton<QuarantineStore>();
        return services;
    }
}
