using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

public static class ExchangeRegistration
{
    /// <summary>
    /// The data exchange (section Gateway:Exchange): the release job and partner API where this
    /// instance publishes, the federation client where it pulls partners' feeds. Returns the
    /// options, which decide the endpoints too.
    /// </summary>
    public static ExchangeOptions AddExchange(this IServiceCollection services, IConfigurationSection gateway)
    {
        var exchange = gateway.GetSection("Exchange").Get<ExchangeOptions>() ?? new ExchangeOptions();
        services.AddOptions<ExchangeOptions>().Bind(gateway.GetSection("Exchange")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ExchangeOptions>, ExchangeOptionsValidator>();
        if (exchange.SharesHere)
        {
            services.AddSingleton<ExchangeContext>();
            ExchangeEndpoints.AddExchangeRateLimiting(services, exchange);
            services.AddHostedService<ReleaseJob>();
        }
        if (exchange.FederatesHere)
        {
            services.AddSingleton<FederationClient>();
            services.AddHostedService(sp => sp.GetRequiredService<FederationClient>());
        }
        return exchange;
    }
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class ExchangeOptionsValidator : IValidateOptions<CityGateway.Exchange.ExchangeOptions>
{
    public ValidateOptionsResult Validate(string? name, CityGateway.Exchange.ExchangeOptions o)
    {
        var errors = new List<string>();
        // An instance that is not the publisher only ingests: nothing of the exchange runs there.
        if (!o.Publisher) return ValidateOptionsResult.Success;
        if (o.Enabled)
        {
            if (string.IsNullOrWhiteSpace(o.CityId)) errors.Add("Gateway:Exchange:CityId: required to share data");
            try
            {
                using var signer = CityGateway.Exchange.Signing.ReleaseSigner.Load(o.Signing);
            }
            catch (CityGateway.Exchange.Signing.SigningKeyException e)
            {
                errors.Add($"{CityGateway.Exchange.Signing.ExchangeSigningOptions.Section}: {e.Message} Create a key with 'Gateway exchange keygen --out city-key.pem'.");
            }
            try { CityGateway.Exchange.AgreementLoader.LoadFolder(o.AgreementsPath); }
            catch (CityGateway.Exchange.AgreementException e) { errors.Add($"Gateway:Exchange:AgreementsPath: {e.Message}"); }
            if (o.RequestsPerMinute < 1) errors.Add("Gateway:Exchange:RequestsPerMinute: must be at least 1");
            if (!double.IsFinite(o.CityEpsilonPerMonth) || o.CityEpsilonPerMonth <= 0 || o.CityEpsilonPerMonth > CityGateway.Exchange.Privacy.PrivacyBudgetLedger.MaxEpsilon)
                errors.Add($"Gateway:Exchange:CityEpsilonPerMonth: {o.CityEpsilonPerMonth} is not a positive ε of at most {CityGateway.Exchange.Privacy.PrivacyBudgetLedger.MaxEpsilon} (city-wide budget per dataset per month; default 20)");
            if (o.ReleaseCheckSeconds < 1) errors.Add("Gateway:Exchange:ReleaseCheckSeconds: must be at least 1");
        }
        for (int i = 0; i < o.Partners.Count; i++)
        {
            var p = o.Partners[i];
            var key = $"Gateway:Exchange:Partners:{i}";
            if (string.IsNullOrWhiteSpace(p.Id)) errors.Add($"{key}:Id: missing");
            if (!Uri.TryCreate(p.WellKnownUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                errors.Add($"{key}:WellKnownUrl: '{p.WellKnownUrl}' is not an http(s) URL");
            if (string.IsNullOrWhiteSpace(p.ApiKey)) errors.Add($"{key}:ApiKey: missing (set it through Gateway__Exchange__Partners__{i}__ApiKey)");
            if (string.IsNullOrWhiteSpace(o.CityId)) errors.Add("Gateway:Exchange:CityId: required to pull partner feeds");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors.Distinct());
    }
}
