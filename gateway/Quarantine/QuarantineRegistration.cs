using Microsoft.Extensions.Options;

namespace CityGateway.Quarantine;

public static class QuarantineRegistration
{
    /// <summary>The quarantine store (section Gateway:Quarantine) and the operator settings of its API (Gateway:Operations).</summary>
    public static IServiceCollection AddQuarantine(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<QuarantineOptions>().Bind(gateway.GetSection("Quarantine")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<QuarantineOptions>, QuarantineOptionsValidator>();
        services.AddOptions<OperationsOptions>().Bind(gateway.GetSection("Operations")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OperationsOptions>, OperationsOptionsValidator>();
        services.AddSingleton<OperatorApiGuard>();
        services.AddSingleton<QuarantineStore>();
        return services;
    }
}

// Names the configuration key at fault, so a wrong setting fails at start-up with a message an operator can act on.
internal sealed class QuarantineOptionsValidator : IValidateOptions<QuarantineOptions>
{
    public const long MinFileBytes = 64 * 1024;

    public ValidateOptionsResult Validate(string? name, QuarantineOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) errors.Add("Gateway:Quarantine:Path: missing");
        if (o.MaxPayloadBytes < 0) errors.Add("Gateway:Quarantine:MaxPayloadBytes: must not be negative");
        if (o.MaxFileBytes < MinFileBytes)
            errors.Add($"Gateway:Quarantine:MaxFileBytes: {o.MaxFileBytes} is too small; must be at least {MinFileBytes} (64 KiB); the default is 16 MiB");
        if (o.MaxFiles < 1)
            errors.Add($"Gateway:Quarantine:MaxFiles: {o.MaxFiles}; must be at least 1 (the current file; 8 by default keeps 7 rotated files beside it)");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class OperationsOptionsValidator : IValidateOptions<OperationsOptions>
{
    public ValidateOptionsResult Validate(string? name, OperationsOptions o)
    {
        var errors = new List<string>();
        if (o.AuthFailuresPerMinute < 1) errors.Add("Gateway:Operations:AuthFailuresPerMinute: must be at least 1 (default 10)");
        if (o.MaxRequestBodyBytes < 1024) errors.Add($"Gateway:Operations:MaxRequestBodyBytes: {o.MaxRequestBodyBytes} is too small; at least 1024 (default 1048576, 1 MiB)");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
