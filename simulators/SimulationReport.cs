using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CityGateway.Simulators;

/// <summary>What a run published; written as JSON with <see cref="SimulatorOptions.ReportPath"/>.</summary>
public sealed class SimulationReport
{
    public DateTimeOffset StartedAt { get; set; }

    public DateTimeOffset FinishedAt { get; set; }

    public double DurationSeconds => Math.Round((FinishedAt - StartedAt).TotalSeconds, 3);

    public string Broker { get; set; } = "";

    public string City { get; set; } = "";

    public int Seed { get; set; }

    public int Qos { get; set; }

    public int Devices { get; set; }

    /// <summary>True when the run was stopped by cancellation (Ctrl-C) rather than by its limits.</summary>
    public bool Cancelled { get; set; }

    /// <summary>Messages handed to the MQTT client (publish accepted).</summary>
    public long Published { get; set; }

    /// <summary>The part of <see cref="Published"/> that was backfilled (readings with past timestamps
    /// sent before live publishing); 0 without a backfill.</summary>
    public long Backfilled { get; set; }

    /// <summary>The backfill window [from, to) of the device timestamps; null without a backfill.</summary>
    public DateTimeOffset? BackfillFrom { get; set; }

    public DateTimeOffset? BackfillTo { get; set; }

    /// <summary>Each device's reading interval in the backfill window.</summary>
    public double? BackfillIntervalSeconds { get; set; }

    /// <summary>QoS 1/2 only: publishes the broker acknowledged with a success code.</summary>
    public long Acknowledged { get; set; }

    /// <summary>Publishes the client refused plus publishes the broker acknowledged with an error code.</summary>
    public long Failed { get; set; }

    /// <summary>The part of <see cref="Failed"/> the broker acknowledged with an error code (for
    /// example not authorised to publish on the topic).</summary>
    public long Rejected { get; set; }

    /// <summary>Published messages still without acknowledgement (QoS 1/2) or not yet sent (QoS 0)
    /// when the drain timeout ended the run.</summary>
    public long Unacknowledged { get; set; }

    public SortedDictionary<string, long> ByDomain { get; set; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, long> ByFormat { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per device, keyed like the registry (DevEUI for ChirpStack devices).</summary>
    public SortedDictionary<string, long> ByDevice { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Points the gateway should write per InfluxDB measurement (= domain): one per published
    /// message, less those the broker rejected.</summary>
    public SortedDictionary<string, long> ExpectedPoints { get; set; } = new(StringComparer.Ordinal);

    public string? Error { get; set; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static SimulationReport? FromJson(string json) => JsonSerializer.Deserialize<SimulationReport>(json, JsonOptions);

    /// <summary>A readable multi-line summary.</summary>
    public string ToSummary()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"Simulation {(Cancelled ? "cancelled" : "finished")} after {DurationSeconds:0.0} s ({StartedAt:u} .. {FinishedAt:u})");
        sb.AppendLine(c, $"  broker        {Broker}  (QoS {Qos}, city {City}, seed {Seed}, {Devices} devices)");
        double rate = DurationSeconds > 0 ? Published / DurationSeconds : 0;
        sb.AppendLine(c, $"  published     {Published}  ({rate:0.0} msg/s)");
        if (BackfillFrom is { } from && BackfillTo is { } to)
            sb.AppendLine(c, $"  backfilled    {Backfilled}  (device times {from:u} .. {to:u}, one per device every {BackfillIntervalSeconds:0.###} s)");
        if (Qos > 0) sb.AppendLine(c, $"  acknowledged  {Acknowledged}");
        sb.AppendLine(c, $"  failed        {Failed}{(Rejected > 0 ? $"  ({Rejected} rejected by the broker)" : "")}");
        if (Unacknowledged > 0) sb.AppendLine(c, $"  {(Qos > 0 ? "unacknowledged" : "unsent")}  {Unacknowledged}");
        sb.AppendLine(c, $"  by domain     {Join(ByDomain)}");
        sb.AppendLine(c, $"  by format     {Join(ByFormat)}");
        if (ByDevice.Count > 0)
        {
            long min = ByDevice.Values.Min(), max = ByDevice.Values.Max();
            sb.AppendLine(c, $"  per device    {ByDevice.Count} devices, {min}{(min != max ? $"..{max}" : "")} messages each");
        }
        sb.AppendLine(c, $"  expected points per measurement: {Join(ExpectedPoints)}");
        if (Error is not null) sb.AppendLine(c, $"  error         {Error}");
        return sb.ToString();

        static string Join(SortedDictionary<string, long> d) =>
            d.Count == 0 ? "-" : string.Join(", ", d.Select(kv => $"{kv.Key} {kv.Value}"));
    }
}
