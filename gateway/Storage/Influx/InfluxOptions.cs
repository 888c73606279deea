namespace CityGateway.Storage.Influx;

public sealed class InfluxOptions
{
    /// <summary>Base URL of the InfluxDB HTTP API.</summary>
    public string Url { get; set; } = "http://127.0.0.1:8086";

    /// <summary>API flavour: v1 (/write, InfluxDB 1.x and 1.x-compatible), v2 (/api/v2/write) or v3 (/api/v3/write_lp).</summary>
    public string Version { get; set; } = "v1";

    /// <summary>v1 and v3: database name.</summary>
    public string Database { get; set; } = "city";

    /// <summary>v1: retention policy; empty uses the database's default.</summary>
    public string? RetentionPolicy { get; set; }

    /// <summary>v2: organisation name or id.</summary>
    public string? Org { get; set; }

    /// <summary>v2: bucket; defaults to <see cref="Database"/>.</summary>
    public string? Bucket { get; set; }

    /// <summary>v2/v3 API token (v1: optional, sent as "Token"). Prefer the environment variable Gateway__Influx__Token.</summary>
    public string? Token { get; set; }

    /// <summary>v1 basic authentication.</summary>
    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>v1: create the database at start-up if it does not exist.</summary>
    public bool CreateDatabase { get; set; } = true;

    /// <summary>Most points per write request.</summary>
    public int BatchSize { get; set; } = 5000;

    /// <summary>How long a batch that is not full may gather after the previous write began: the
    /// shortest time between two writes while the load is below a full batch. 0: send at once.</summary>
    public int LingerMs { get; set; } = 50;

    /// <summary>How often the gateway's own metrics and exchange points are written when no frames arrive.</summary>
    public int FlushIntervalMs { get; set; } = 500;

    public bool Gzip { get; set; } = true;

    public int TimeoutSeconds { get; set; } = 10;

    /// <summary>Backoff between failed writes, doubling from min to max.</summary>
    public int RetryMinMs { get; set; } = 250;

    public int RetryMaxMs { get; set; } = 30000;
}
