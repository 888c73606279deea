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
            services.AddSingleton<ReleaseJobState>();
            ExchangeEndpoints.AddExchangeRateLimiting(services, exchange);
            services.AddHostedService<ReleaseJob>();
            if (exchange.Transparency.Enabled) Transparency.TransparencyEndpoints.AddTransparency(services, exchange);
        }
        if (exchange.FederatesHere)
        {
            services.AddSingleton<FederationState>();
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
                // With a key history, the configured key must be its newest: a retired key would sign
                // releases partners no longer accept, an unknown one releases they cannot tie to the city.
                if (CityGateway.Exchange.Signing.SigningKeyHistory.CheckConfigured(o.DataPath, signer, o.Signing) is { } wrongKey) errors.Add(wrongKey);
            }
            catch (CityGateway.Exchange.Signing.SigningKeyException e)
            {
                errors.Add($"{CityGateway.Exchange.Signing.ExchangeSigningOptions.Section}: {e.Message} Create a key with 'Gateway exchange keygen --out city-key.pem'.");
            }
            catch (CityGateway.Exchange.Signing.SigningKeyHistoryException e)
            {
                errors.Add($"Gateway:Exchange:DataPath: {e.Message}");
            }
            if (string.IsNullOrWhiteSpace(o.PublicBaseUrl))
                errors.Add("Gateway:Exchange:PublicBaseUrl: required to share data: the partner API's public base URL (absolute http(s), e.g. https://exchange.city.example), published in the well-known document");
            else if (!Uri.TryCreate(o.PublicBaseUrl, UriKind.Absolute, out var publicUrl) || publicUrl.Scheme is not ("http" or "https")
                     || !string.IsNullOrEmpty(publicUrl.Query) || !string.IsNullOrEmpty(publicUrl.Fragment) || !string.IsNullOrEmpty(publicUrl.UserInfo))
                errors.Add($"Gateway:Exchange:PublicBaseUrl: '{o.PublicBaseUrl}' is not an absolute http(s) URL without user, query or fragment, such as https://exchange.city.example");
            if (o.AuthFailuresPerMinute < 1) errors.Add("Gateway:Exchange:AuthFailuresPerMinute: must be at least 1");
            try { CityGateway.Exchange.AgreementLoader.LoadFolder(o.AgreementsPath); }
            catch (CityGateway.Exchange.AgreementException e) { errors.Add($"Gateway:Exchange:AgreementsPath: {e.Message}"); }
            if (o.RequestsPerMinute < 1) errors.Add("Gateway:Exchange:RequestsPerMinute: must be at least 1");
            if (!double.IsFinite(o.CityEpsilonPerMonth) || o.CityEpsilonPerMonth <= 0 || o.CityEpsilonPerMonth > CityGateway.Exchange.Privacy.PrivacyBudgetLedger.MaxEpsilon)
                errors.Add($"Gateway:Exchange:CityEpsilonPerMonth: {o.CityEpsilonPerMonth} is not a positive ε of at most {CityGateway.Exchange.Privacy.PrivacyBudgetLedger.MaxEpsilon} (city-wide budget per dataset per month; default 20)");
            if (o.ReleaseCheckSeconds < 1) errors.Add("Gateway:Exchange:ReleaseCheckSeconds: must be at least 1");
            o.Transparency.Validate(errors);
        }
        for (int i = 0; i < o.Partners.Count; i++)
        {
            var p = o.Partners[i];
            var key = $"Gateway:Exchange:Partners:{i}";
            if (string.IsNullOrWhiteSpace(p.Id)) errors.Add($"{key}:Id: missing");
            if (FederationOrigin.CheckConfigured(p.WellKnownUrl) is { } wellKnownError)
                errors.Add($"{key}:WellKnownUrl: {wellKnownError}");
            if (!string.IsNullOrWhiteSpace(p.ApiBase) && FederationOrigin.CheckConfigured(p.ApiBase) is { } apiBaseError)
                errors.Add($"{key}:ApiBase: {apiBaseError}");
            if (p.PollSeconds < 1) errors.Add($"{key}:PollSeconds: must be at least 1");
            if (!string.IsNullOrWhiteSpace(p.PublicKeyPem) && CityGateway.Exchange.Signing.ReleaseSigner.KeyIdOf(p.PublicKeyPem) is null)
                errors.Add($"{key}:PublicKeyPem: not a P-256 \"PUBLIC KEY\" PEM");
            if (string.IsNullOrWhiteSpace(p.ApiKey)) errors.Add($"{key}:ApiKey: missing (set it through Gateway__Exchange__Partners__{i}__ApiKey)");
            if (string.IsNullOrWhiteSpace(o.CityId)) errors.Add("Gateway:Exchange:CityId: required to pull partner feeds");
        }
        if (o.Partners.Count > 0) o.Federation.Validate(errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors.Distinct());
    }
}
