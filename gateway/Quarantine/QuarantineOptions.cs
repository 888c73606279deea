namespace CityGateway.Quarantine;

public sealed class QuarantineOptions
{
    /// <summary>Append-only JSON-lines file of quarantined input; rotated files sit beside it as Path.1 (newest) … Path.N.</summary>
    public string Path { get; set; } = "data/quarantine.jsonl";

    /// <summary>Payload bytes kept per entry; larger payloads are stored truncated (their size is recorded).</summary>
    public int MaxPayloadBytes { get; set; } = 4096;

    /// <summary>The file is rotated (renamed to Path.1) before an entry would take it past this size.</summary>
    public long MaxFileBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Files kept, the current one included; rotation removes the oldest beyond this (counted and logged).</summary>
    public int MaxFiles { get; set; } = 8;
}
