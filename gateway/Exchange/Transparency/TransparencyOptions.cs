namespace CityGateway.Exchange.Transparency;

/// <summary>Section Gateway:Exchange:Transparency: the public page on the partner listener.</summary>
public sealed class TransparencyOptions
{
    public const string Section = "Gateway:Exchange:Transparency";

    /// <summary>Serve /transparency and /transparency.json where the exchange is shared (default true).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How long one computed report is served before it is made again (1 to 3600 s; default 30).</summary>
    public int CacheSeconds { get; set; } = 30;

    /// <summary>Days of released values the charts show (1 to 31; default 7).</summary>
    public int ChartDays { get; set; } = 7;

    /// <summary>Requests per client address per minute (IPv6 by /64); beyond it 429 (default 60).</summary>
    public int RequestsPerMinute { get; set; } = 60;

    internal void Validate(List<string> errors)
    {
        if (CacheSeconds is < 1 or > 3600) errors.Add($"{Section}:CacheSeconds: {CacheSeconds} is not between 1 and 3600 (seconds one computed page is served; default 30)");
        if (ChartDays is < 1 or > 31) errors.Add($"{Section}:ChartDays: {ChartDays} is not between 1 and 31 (days of released values the charts show; default 7)");
        if (RequestsPerMinute < 1) errors.Add($"{Section}:RequestsPerMinute: must be at least 1 (requests per client address per minute; default 60)");
    }
}
