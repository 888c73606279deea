namespace CityGateway.Exchange;

public sealed class ExchangeOptions
{
    /// <summary>Share data with partner cities (releases, partner API). Off by default.</summary>
    public bool Enabled { get; set; }

    /// <summary>This city's id and name, as partners see them.</summary>
    public string CityId { get; set; } = "";

    public string CityName { get; set; } = "";

    /// <summary>Folder with one agreement file (*.json) per partner.</summary>
    public string AgreementsPath { get; set; } = "agreements";

    /// <summary>Where releases, partner keys, the budget ledger, pins and cursors are kept.</summary>
    public string DataPath { get; set; } = "data/exchange";

    /// <summary>The city's signing key (Gateway:Exchange:Signing:KeyFile, or KeyPem from the environment).</summary>
    public Signing.ExchangeSigningOptions Signing { get; set; } = new();

    /// <summary>Public base URL of the partner API, published at /.well-known/city-exchange.</summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>
    /// This instance acts for the city in the exchange: it makes the releases, serves the partner API
    /// and pulls partners' feeds. Exactly one instance per city should; with several instances
    /// (scale-out) the others set it to false and only ingest: no release job, no partner API, no
    /// federation client, and they need neither the signing key nor the agreements.
    /// </summary>
    public bool Publisher { get; set; } = true;

    /// <summary>Releases are made and the partner API is served by this instance.</summary>
    public bool SharesHere => Enabled && Publisher;

    /// <summary>Partners' feeds are pulled by this instance.</summary>
    public bool FederatesHere => Publisher && Partners.Count > 0;

    /// <summary>How often the release job looks for windows to release.</summary>
    public int ReleaseCheckSeconds { get; set; } = 60;

    /// <summary>How far back the release job looks for unreleased windows.</summary>
    public TimeSpan Backfill { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// City-wide privacy budget: the ε that may be spent on one dataset (a domain: traffic, water) in
    /// one calendar month (UTC), summed over every release to every partner. Each cell group is
    /// charged once whoever receives it; with this spent, no further cells of the dataset are
    /// released that month. Default 20; between 0 (exclusive) and 1,000,000.
    /// </summary>
    public double CityEpsilonPerMonth { get; set; } = 20;

    /// <summary>Partner API requests per key per minute.</summary>
    public int RequestsPerMinute { get; set; } = 60;

    /// <summary>Partner cities whose feeds this gateway pulls.</summary>
    public List<PartnerFeedOptions> Partners { get; set; } = [];
}

public sealed class PartnerFeedOptions
{
    /// <summary>The partner city's id (the "city" tag of its values in measurement partner).</summary>
    public string Id { get; set; } = "";

    /// <summary>Their well-known document, e.g. https://exchange.harbour.example/.well-known/city-exchange.</summary>
    public string WellKnownUrl { get; set; } = "";

    /// <summary>Our key at their gateway (from the environment: Gateway__Exchange__Partners__0__ApiKey).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Their public key (PEM); without it, the key is pinned on first use.</summary>
    public string? PublicKeyPem { get; set; }

    public int PollSeconds { get; set; } = 60;
}

internal static partial class ExchangeRoleLog
{
    [LoggerMessage(EventId = 8004, Level = LogLevel.Information, Message = "Exchange: this instance is not the publisher (Gateway:Exchange:Publisher=false): it only ingests; releases, the partner API and partner feeds run on the publisher instance")]
    public static partial void IngestOnly(ILogger logger);
}
