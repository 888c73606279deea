namespace CityGateway.Simulators;

/// <summary>What the serial simulator writes, where, and how fast.</summary>
public sealed class SerialSimulatorOptions
{
    /// <summary>The line formats the serial simulator can produce: kv (water-quality instrument),
    /// csv (traffic counter), jsonl (air-quality station).</summary>
    public static readonly IReadOnlyList<string> AllFormats = ["kv", "csv", "jsonl"];

    /// <summary>Line ending written after every line.</summary>
    public const string Crlf = "\r\n";

    /// <summary>Line ending written after every line.</summary>
    public const string Lf = "\n";

    /// <summary>The tty to write to: a serial device or one end of a pseudo-terminal pair.</summary>
    public string Port { get; set; } = "";

    /// <summary>kv, csv or jsonl; all devices of a run use this format.</summary>
    public string Format { get; set; } = "kv";

    /// <summary>Number of devices sharing the line (wq-s001…, trf-s001…, env-s001…).</summary>
    public int Devices { get; set; } = 5;

    /// <summary>Lines per second across all devices; 0 writes as fast as the port (or the throttle) allows.</summary>
    public double Rate { get; set; } = 10;

    /// <summary>Line speed set on the tty, and the pace of <see cref="Throttle"/>.</summary>
    public int BaudRate { get; set; } = 115200;

    /// <summary>Pace the bytes to what an 8N1 line at <see cref="BaudRate"/> carries: BaudRate / 10
    /// bytes per second, written in chunks of about 2 ms of line time.</summary>
    public bool Throttle { get; set; }

    /// <summary>Each device stops after this many readings (intact or damaged lines); null for no limit.</summary>
    public int? MessagesPerDevice { get; set; }

    /// <summary>Stop after this long; null runs until <see cref="MessagesPerDevice"/> is reached or the run is cancelled.</summary>
    public TimeSpan? Duration { get; set; }

    /// <summary>The same seed gives the same devices, values, corrupted lines and split writes.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Append the NMEA-style "*hh" checksum to every line.</summary>
    public bool Checksum { get; set; } = true;

    /// <summary>"\r\n" (default) or "\n".</summary>
    public string LineEnding { get; set; } = Crlf;

    /// <summary>Fraction of lines (0..1) that are corrupted. Needs <see cref="Checksum"/>: every corrupted
    /// line is one that a reader requiring checksums rejects.</summary>
    public double Noise { get; set; }

    /// <summary>Fraction of intact lines (0..1) written in 2–4 write calls with pauses of 1–5 ms between them.</summary>
    public double SplitWrites { get; set; }

    /// <summary>
    /// When set, the daily profiles are evaluated at this instant for every reading instead of at the
    /// time it is written, so that the values depend on the seed alone.
    /// </summary>
    public DateTimeOffset? CurveTime { get; set; }

    /// <summary>City id written to the registry.</summary>
    public string City { get; set; } = "lumen";

    /// <summary>The city's district names; null for the default city's (as for the MQTT fleet).</summary>
    public List<string>? Districts { get; set; }

    /// <summary>The city's centre; null for the default city's.</summary>
    public double? CentreLatitude { get; set; }

    public double? CentreLongitude { get; set; }

    /// <summary>Where the devices are placed: the same map as an MQTT fleet of the same city and seed.</summary>
    public CityMap Map() => CityMap.Create(Districts, CentreLatitude, CentreLongitude, Seed);

    /// <summary>When set, the device registry is written to this file before writing starts.</summary>
    public string? RegistryPath { get; set; }

    /// <summary>When set, the run report is written to this file as JSON.</summary>
    public string? ReportPath { get; set; }

    /// <summary>Show a live progress line on stderr (only when stderr is a terminal).</summary>
    public bool Progress { get; set; }

    /// <summary>How long to keep retrying when the port cannot be opened at the start.</summary>
    public TimeSpan OpenTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often to try to reopen a port that disappeared during the run.</summary>
    public TimeSpan ReconnectInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Receives port events and warnings; null discards them.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> describing the first invalid setting.
    /// <paramref name="needPort"/>: whether a port path is required (not for registry or generation only).</summary>
    public void Validate(bool needPort = true)
    {
        if (needPort && string.IsNullOrWhiteSpace(Port)) throw new ArgumentException("no port given");
        if (!AllFormats.Contains(NormalisedFormat()))
            throw new ArgumentException($"unknown format '{Format}'; known: {string.Join(", ", AllFormats)}");
        if (string.IsNullOrEmpty(City) || !City.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"city '{City}' must be non-empty and use only letters, digits, '-' and '_'");
        if (Districts is not null) CityMap.ValidateDistricts(Districts);
        if (CentreLatitude.HasValue != CentreLongitude.HasValue) throw new ArgumentException("--centre: give both the latitude and the longitude");
        if (CentreLatitude is { } lat && CentreLongitude is { } lon) CityMap.ValidateCentre(lat, lon);
        if (Devices is < 1 or > 999) throw new ArgumentException("the number of devices must be 1 to 999");
        if (!double.IsFinite(Rate) || Rate < 0) throw new ArgumentException("the rate must be 0 or a positive number of lines per second");
        if (BaudRate < 50) throw new ArgumentException("the baud rate must be at least 50");
        if (MessagesPerDevice is { } m && m < 1) throw new ArgumentException("messages per device must be at least 1");
        if (Duration is { } d && d <= TimeSpan.Zero) throw new ArgumentException("the duration must be positive");
        if (LineEnding is not (Crlf or Lf)) throw new ArgumentException("the line ending must be \"\\r\\n\" or \"\\n\"");
        if (!double.IsFinite(Noise) || Noise is < 0 or > 1) throw new ArgumentException("noise must be a fraction from 0 to 1");
        if (Noise > 0 && !Checksum)
            throw new ArgumentException("noise needs checksums: without them a damaged line cannot be told from an intact one");
        if (!double.IsFinite(SplitWrites) || SplitWrites is < 0 or > 1) throw new ArgumentException("split writes must be a fraction from 0 to 1");
        if (OpenTimeout < TimeSpan.Zero) throw new ArgumentException("the open timeout must not be negative");
        if (ReconnectInterval <= TimeSpan.Zero) throw new ArgumentException("the reconnect interval must be positive");
    }

    /// <summary>The format, trimmed and lower case.</summary>
    internal string NormalisedFormat() => (Format ?? "").Trim().ToLowerInvariant();

    /// <summary>Bytes per second of an 8N1 line at <see cref="BaudRate"/> (a start bit, 8 data bits, a stop bit).</summary>
    internal double LineBytesPerSecond => BaudRate / 10.0;
}
