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

    /// <summary>Public base URL of the partner API (absolute http(s)), published at
    /// /.well-known/city-exchange. Required where the exchange is shared: it is never taken from the
    /// request's Host header, which the client chooses.</summary>
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

    /// <summary>Partner API requests per verified partner per minute (all of a partner's keys together).</summary>
    public int RequestsPerMinute { get; set; } = 60;

    /// <summary>Failed partner API authentications per client address per minute; beyond it the
    /// address gets 429 without its key being checked, until the minute is over.</summary>
    public int AuthFailuresPerMinute { get; set; } = 10;

    /// <summary>Partner cities whose feeds this gateway pulls.</summary>
    public List<PartnerFeedOptions> Partners { get; set; } = [];

    /// <summary>The public transparency page (Gateway:Exchange:Transparency).</summary>
    public Transparency.TransparencyOptions Transparency { get; set; } = new();

    /// <summary>Bounds on what the federation client takes from a partner (Gateway:Exchange:Federation).</summary>
    public FederationOptions Federation { get; set; } = new();
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

    /// <summary>
    /// Their partner API's base URL, when it is not on the origin (scheme, host, port) of
    /// <see cref="WellKnownUrl"/>. The <c>apiBase</c> their well-known document names must be on that
    /// origin or equal this; otherwise our key is not sent.
    /// </summary>
    public string? ApiBase { get; set; }

    public int PollSeconds { get; set; } = 60;
}

/// <summary>
/// Bounds on one partner's answers (section <c>Gateway:Exchange:Federation</c>): a partner that
/// answers too much, too slowly or without end is refused at these limits, never followed.
/// </summary>
public sealed class FederationOptions
{
    public const string Section = "Gateway:Exchange:Federation";

    /// <summary>Largest response body read from a partner, in bytes (4 MiB).</summary>
    public long MaxResponseBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Feed pages fetched in one poll; the rest waits for the next poll.</summary>
    public int MaxPagesPerPoll { get; set; } = 20;

    /// <summary>Longest one poll of one partner may take, all requests included.</summary>
    public int MaxPollSeconds { get; set; } = 120;

    /// <summary>Longest one request may take, headers and body.</summary>
    public int RequestTimeoutSeconds { get; set; } = 30;

    /// <summary>Most rows one release may have.</summary>
    public int MaxRowsPerRelease { get; set; } = 10_000;

    internal void Validate(List<string> errors)
    {
        if (MaxResponseBytes < 1024 || MaxResponseBytes > 1L << 30)
            errors.Add($"{Section}:MaxResponseBytes: {MaxResponseBytes} is outside 1024..1073741824 (default 4194304)");
        if (MaxPagesPerPoll < 1 || MaxPagesPerPoll > 10_000)
            errors.Add($"{Section}:MaxPagesPerPoll: {MaxPagesPerPoll} is outside 1..10000 (default 20)");
        if (RequestTimeoutSeconds < 1 || RequestTimeoutSeconds > 3600)
            errors.Add($"{Section}:RequestTimeoutSeconds: {RequestTimeoutSeconds} is outside 1..3600 (default 30)");
        if (MaxPollSeconds < 1 || MaxPollSeconds > 86_400)
            errors.Add($"{Section}:MaxPollSeconds: {MaxPollSeconds} is outside 1..86400 (default 120)");
        else if (MaxPollSeconds < RequestTimeoutSeconds)
            errors.Add($"{Section}:MaxPollSeconds: {MaxPollSeconds} is shorter than {Section}:RequestTimeoutSeconds ({RequestTimeoutSeconds})");
        if (MaxRowsPerRelease < 1 || MaxRowsPerRelease > 1_000_000)
            errors.Add($"{Section}:MaxRowsPerRelease: {MaxRowsPerRelease} is outside 1..1000000 (default 10000)");
    }
}

internal static partial class ExchangeRoleLog
{
    [LoggerMessage(EventId = 8004, Level = LogLevel.Information, Message = "Exchange: this instance is not the publisher (Gateway:Exchange:Publisher=false): it only ingests; releases, the partner API and partner feeds run on the publisher instance")]
    public static partial void IngestOnly(ILogger logger);
}
