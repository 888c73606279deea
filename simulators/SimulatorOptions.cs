namespace CityGateway.Simulators;

/// <summary>What to simulate and where to publish it.</summary>
public sealed class SimulatorOptions
{
    /// <summary>The payload formats the simulator can produce.</summary>
    public static readonly IReadOnlyList<string> AllFormats = ["json", "senml", "chirpstack", "tts"];

    /// <summary>Broker URL: mqtt://host:port or mqtts://host:port.</summary>
    public string BrokerUrl { get; set; } = "mqtt://127.0.0.1:1883";

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>MQTT client id; a fresh random one per run by default.</summary>
    public string ClientId { get; set; } = "city-simulator-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>City id written to the registry; also names the LoRaWAN applications ({city}-sensors).</summary>
    public string City { get; set; } = "lumen";

    /// <summary>The city's district names (lower-case letters, digits, '-'); null for the default six
    /// (<see cref="CityMap.DefaultDistrictNames"/>). Devices are spread over them by the seed.</summary>
    public List<string>? Districts { get; set; }

    /// <summary>Latitude of the city's centre; null for the default city's.</summary>
    public double? CentreLatitude { get; set; }

    /// <summary>Longitude of the city's centre; null for the default city's.</summary>
    public double? CentreLongitude { get; set; }

    public int TrafficDevices { get; set; } = 10;

    public int WaterDevices { get; set; } = 10;

    public int EnvironmentDevices { get; set; } = 10;

    /// <summary>Formats handed out round-robin by device index within each domain.</summary>
    public List<string> Formats { get; set; } = [.. AllFormats];

    /// <summary>Messages per second across the whole fleet; 0 publishes as fast as the broker accepts.</summary>
    public double Rate { get; set; } = 50;

    /// <summary>Stop after this long; null runs until <see cref="MessagesPerDevice"/> is reached or the run is cancelled.</summary>
    public TimeSpan? Duration { get; set; }

    /// <summary>Each device stops after this many messages; null for no limit.</summary>
    public int? MessagesPerDevice { get; set; }

    /// <summary>The same seed gives the same device ids, types, sites and sequence of values.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>
    /// When set, the daily profiles (rush hours, water demand, temperature, noise) are evaluated at this
    /// instant for every message instead of at the message's timestamp, so that the values depend on
    /// the seed alone. Timestamps stay wall-clock time.
    /// </summary>
    public DateTimeOffset? CurveTime { get; set; }

    /// <summary>MQTT QoS of the publishes (0, 1 or 2).</summary>
    public int Qos { get; set; } = 1;

    /// <summary>The gateway's default <c>Gateway:Normalisation:MaxAge</c>: readings older than this
    /// when they arrive are quarantined, so a backfill must be shorter.</summary>
    public static readonly TimeSpan MaxBackfill = TimeSpan.FromDays(7);

    /// <summary>
    /// When set, before live publishing every device sends the readings it buffered over
    /// [start - Backfill, start), one every <see cref="BackfillInterval"/>, each with its own past
    /// timestamp, in time order across the fleet, as fast as <see cref="MaxInFlight"/> allows.
    /// Must be shorter than <see cref="MaxBackfill"/>.
    /// </summary>
    public TimeSpan? Backfill { get; set; }

    /// <summary>How often each device took a reading during the backfill window (default one a minute).</summary>
    public TimeSpan BackfillInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>MQTT QoS of the backfilled publishes (default 1, whatever <see cref="Qos"/> is: a
    /// device's buffer is emptied only once the broker has the readings).</summary>
    public int BackfillQos { get; set; } = 1;

    /// <summary>When set, the device registry is written to this file before publishing starts.</summary>
    public string? RegistryPath { get; set; }

    /// <summary>When set, the run report is written to this file as JSON.</summary>
    public string? ReportPath { get; set; }

    /// <summary>Show a live progress line on stderr (only when stderr is a terminal).</summary>
    public bool Progress { get; set; }

    /// <summary>Most unacknowledged publishes allowed at once; publishing waits beyond that.</summary>
    public int MaxInFlight { get; set; } = 1000;

    /// <summary>How long to keep retrying the first connection.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait at the end for outstanding acknowledgements.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Receives connection events and warnings; null discards them.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> describing the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(BrokerUrl)) throw new ArgumentException("the broker URL is empty");
        if (!Uri.TryCreate(BrokerUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("mqtt" or "mqtts" or "tcp" or "ssl" or "tls"))
            throw new ArgumentException($"'{BrokerUrl}' is not a broker URL such as mqtt://127.0.0.1:1883");
        if (string.IsNullOrEmpty(ClientId)) throw new ArgumentException("the client id is empty");
        if (string.IsNullOrEmpty(City) || !City.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"city '{City}' must be non-empty and use only letters, digits, '-' and '_'");
        if (TrafficDevices < 0 || WaterDevices < 0 || EnvironmentDevices < 0)
            throw new ArgumentException("device counts must not be negative");
        if (TrafficDevices > 9999 || WaterDevices > 9999 || EnvironmentDevices > 9999)
            throw new ArgumentException("at most 9999 devices per domain");
        if (TrafficDevices + WaterDevices + EnvironmentDevices == 0)
            throw new ArgumentException("the fleet has no devices");
        if (Formats is null || Formats.Count == 0) throw new ArgumentException("no payload formats given");
        foreach (var f in Formats)
            if (!AllFormats.Contains(f?.Trim().ToLowerInvariant()))
                throw new ArgumentException($"unknown format '{f}'; known: {string.Join(", ", AllFormats)}");
        if (!double.IsFinite(Rate) || Rate < 0) throw new ArgumentException("the rate must be 0 or a positive number of messages per second");
        if (Duration is { } d && d <= TimeSpan.Zero) throw new ArgumentException("the duration must be positive");
        if (MessagesPerDevice is { } m && m < 1) throw new ArgumentException("messages per device must be at least 1");
        if (Qos is < 0 or > 2) throw new ArgumentException("QoS must be 0, 1 or 2");
        if (MaxInFlight < 1) throw new ArgumentException("max in-flight must be at least 1");
        if (Districts is not null) CityMap.ValidateDistricts(Districts);
        if (CentreLatitude.HasValue != CentreLongitude.HasValue) throw new ArgumentException("--centre: give both the latitude and the longitude");
        if (CentreLatitude is { } lat && CentreLongitude is { } lon) CityMap.ValidateCentre(lat, lon);
        if (Backfill is { } b)
        {
            if (b <= TimeSpan.Zero) throw new ArgumentException($"--backfill must be positive, not {DurationText.Format(b)}");
            if (b >= MaxBackfill)
                throw new ArgumentException($"--backfill must be shorter than {DurationText.Format(MaxBackfill)}, not {DurationText.Format(b)}: "
                    + "the gateway quarantines readings older than Gateway:Normalisation:MaxAge (default 7 days) when they arrive");
            if (BackfillInterval < TimeSpan.FromSeconds(1))
                throw new ArgumentException($"--backfill-interval must be at least 1s, not {DurationText.Format(BackfillInterval)}");
            if (BackfillInterval > b)
                throw new ArgumentException($"--backfill-interval ({DurationText.Format(BackfillInterval)}) must not be longer than --backfill ({DurationText.Format(b)})");
            if (BackfillQos is < 0 or > 2) throw new ArgumentException("backfill QoS must be 0, 1 or 2");
        }
    }

    /// <summary>The city's centre and districts these options describe.</summary>
    public CityMap Map() => CityMap.Create(Districts, CentreLatitude, CentreLongitude, Seed);

    /// <summary>The formats in use, lower case, without repeats, in the given order.</summary>
    internal IReadOnlyList<string> NormalisedFormats() =>
        Formats.Select(f => f.Trim().ToLowerInvariant()).Distinct().ToArray();
}
