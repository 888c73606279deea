using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CityGateway.Simulators;

/// <summary>What a serial run wrote; written as JSON with <see cref="SerialSimulatorOptions.ReportPath"/>.</summary>
public sealed class SerialSimulationReport
{
    /// <summary>When the port was first opened and writing began.</summary>
    public DateTimeOffset StartedAt { get; set; }

    public DateTimeOffset FinishedAt { get; set; }

    public double DurationSeconds => Math.Round((FinishedAt - StartedAt).TotalSeconds, 3);

    public string Port { get; set; } = "";

    /// <summary>kv, csv or jsonl.</summary>
    public string Format { get; set; } = "";

    public string DeviceType { get; set; } = "";

    public string City { get; set; } = "";

    public int Seed { get; set; }

    public int Devices { get; set; }

    public int BaudRate { get; set; }

    public bool Throttle { get; set; }

    public bool Checksum { get; set; }

    /// <summary>crlf or lf.</summary>
    public string LineEnding { get; set; } = "";

    /// <summary>The requested rate in lines per second; 0 for as fast as possible.</summary>
    public double Rate { get; set; }

    /// <summary>True when the run was stopped by cancellation (Ctrl-C) rather than by its limits.</summary>
    public bool Cancelled { get; set; }

    /// <summary>Lines written completely, intact and corrupted.</summary>
    public long LinesWritten { get; set; }

    /// <summary>Intact lines written: each should become one stored point.</summary>
    public long IntactLines { get; set; }

    /// <summary>Corrupted lines written: each should be rejected (quarantined) once.</summary>
    public long CorruptedLines { get; set; }

    /// <summary>Corrupted lines written, per kind (every kind listed, 0 when none).</summary>
    public SortedDictionary<string, long> CorruptedByKind { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Intact lines written in more than one write call.</summary>
    public long SplitLines { get; set; }

    /// <summary>Bytes handed to the port, including the parts of lines cut off when it disappeared.</summary>
    public long BytesWritten { get; set; }

    public double LinesPerSecond => DurationSeconds > 0 ? Math.Round(LinesWritten / DurationSeconds, 1) : 0;

    public double BytesPerSecond => DurationSeconds > 0 ? Math.Round(BytesWritten / DurationSeconds, 1) : 0;

    /// <summary>Times the port disappeared and was opened again.</summary>
    public int Reconnects { get; set; }

    /// <summary>Lines not written (or cut off) because the port had disappeared.</summary>
    public long LinesLost { get; set; }

    /// <summary>Intact lines written per device id.</summary>
    public SortedDictionary<string, long> ByDevice { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Points the gateway should write per InfluxDB measurement (= domain): one per intact line.</summary>
    public SortedDictionary<string, long> ExpectedPoints { get; set; } = new(StringComparer.Ordinal);

    public string? Error { get; set; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static SerialSimulationReport? FromJson(string json) => JsonSerializer.Deserialize<SerialSimulationReport>(json, JsonOptions);

    /// <summary>A readable multi-line summary.</summary>
    public string ToSummary()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"Serial simulation {(Cancelled ? "cancelled" : "finished")} after {DurationSeconds:0.0} s ({StartedAt:u} .. {FinishedAt:u})");
        sb.AppendLine(c, $"  port          {Port}  ({Format}, {DeviceType}, {Devices} devices, city {City}, seed {Seed})");
        string pace = Throttle ? $"throttled to {BaudRate / 10} B/s" : "not throttled";
        sb.AppendLine(c, $"  line          {BaudRate} baud 8N1, {pace}, checksum {(Checksum ? "on" : "off")}, {LineEnding.ToUpperInvariant()}, rate {(Rate > 0 ? $"{Rate} lines/s" : "full speed")}");
        sb.AppendLine(c, $"  lines         {LinesWritten} written ({LinesPerSecond:0.0} lines/s): {IntactLines} intact, {CorruptedLines} corrupted");
        if (CorruptedLines > 0) sb.AppendLine(c, $"  corrupted     {Join(CorruptedByKind)}");
        if (SplitLines > 0) sb.AppendLine(c, $"  split writes  {SplitLines} intact lines written in 2-4 pieces");
        sb.AppendLine(c, $"  bytes         {BytesWritten} ({BytesPerSecond:0} B/s)");
        if (Reconnects > 0 || LinesLost > 0)
            sb.AppendLine(c, $"  port lost     {Reconnects} reconnect{(Reconnects == 1 ? "" : "s")}, {LinesLost} lines not written");
        if (ByDevice.Count > 0)
        {
            long min = ByDevice.Values.Min(), max = ByDevice.Values.Max();
            sb.AppendLine(c, $"  per device    {ByDevice.Count} devices, {min}{(min != max ? $"..{max}" : "")} intact lines each");
        }
        sb.AppendLine(c, $"  expected points per measurement: {Join(ExpectedPoints)}");
        if (Error is not null) sb.AppendLine(c, $"  error         {Error}");
        return sb.ToString();

        static string Join(SortedDictionary<string, long> d) =>
            d.Count == 0 ? "-" : string.Join(", ", d.Select(kv => $"{kv.Key} {kv.Value}"));
    }
}
