using CityGateway.Decoding.Serial;
using CityGateway.Routing;

namespace CityGateway.Sources.Serial;

/// <summary>One serial port: line settings, framing, format and how the line's keys map.</summary>
public sealed class SerialPortOptions
{
    /// <summary>Short name: frames carry the topic serial/{Name}; also the tag "port" in self-metrics. Defaults to the device file's name.</summary>
    public string? Name { get; set; }

    public string Path { get; set; } = "";

    public int BaudRate { get; set; } = 9600;

    public int DataBits { get; set; } = 8;

    public Parity Parity { get; set; } = Parity.None;

    public int StopBits { get; set; } = 1;

    public bool HardwareFlowControl { get; set; }

    /// <summary>Line format: kv (key=value pairs), csv (with Columns) or jsonl (a JSON object per line).</summary>
    public string Format { get; set; } = "kv";

    /// <summary>csv: column names in order; one of them is the DeviceField.</summary>
    public List<string> Columns { get; set; } = [];

    public string Delimiter { get; set; } = ",";

    /// <summary>None, Optional (verify a trailing *hh when present) or Required.</summary>
    public ChecksumPolicy Checksum { get; set; } = ChecksumPolicy.Optional;

    /// <summary>Key (kv, jsonl) or column (csv) holding the device id.</summary>
    public string DeviceField { get; set; } = "device";

    /// <summary>Key or column of the device timestamp; without one, the receive time is used.</summary>
    public string TimestampField { get; set; } = "ts";

    public string TimestampFormat { get; set; } = "auto";

    public List<string> TagFields { get; set; } = ["lane", "vehicleType"];

    /// <summary>Longer lines are quarantined (line_too_long) and the framer resynchronises on the next newline.</summary>
    public int MaxLineBytes { get; set; } = 4096;

    /// <summary>After a short read, wait this long before reading again so that bytes trickling in at
    /// line speed are taken a batch at a time (fewer wake-ups per line). 0 reads every byte at once.</summary>
    public int ReadCoalesceMs { get; set; } = 5;

    /// <summary>Reopen backoff when the device is missing or vanished, doubling from min to max.</summary>
    public int ReopenMinMs { get; set; } = 500;

    public int ReopenMaxMs { get; set; } = 10000;

    public string EffectiveName => string.IsNullOrWhiteSpace(Name) ? System.IO.Path.GetFileName(Path) : Name;

    public string Topic => "serial/" + EffectiveName;

    public SerialPortSettings Settings => new()
    {
        Path = Path, BaudRate = BaudRate, DataBits = DataBits, Parity = Parity, StopBits = StopBits, HardwareFlowControl = HardwareFlowControl,
    };

    /// <summary>The route the pipeline uses for this port's frames.</summary>
    public TopicRoute ToRoute() => new()
    {
        Source = "serial", Filter = Topic, Format = Format, Qos = 0, Columns = Columns, Delimiter = Delimiter, Checksum = Checksum,
        DeviceField = DeviceField, TimestampField = TimestampField, TimestampFormat = TimestampFormat, TagFields = TagFields,
    };
}

public sealed class SerialOptions
{
    public List<SerialPortOptions> Ports { get; set; } = [];
}
