namespace CityGateway.Quarantine;

public sealed class QuarantineOptions
{
    /// <summary>Append-only JSON-lines file of quarantined input.</summary>
    public string Path { get; set; } = "data/quarantine.jsonl";

    /// <summary>Payload bytes kept per entry; larger payloads are stored truncated (their size is recorded).</summary>
    public int MaxPayloadBytes { get; set; } = 4096;
}
