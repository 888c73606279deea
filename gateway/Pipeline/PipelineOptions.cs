namespace CityGateway.Pipeline;

public sealed class PipelineOptions
{
    /// <summary>Frames (with their encoded points) waiting for the InfluxDB writer; when full, decoding waits.</summary>
    public int FrameQueueCapacity { get; set; } = 10000;

    /// <summary>The earlier name of the queue bound, counted in points; refused at start-up with the new name.</summary>
    public int? PointQueueCapacity { get; set; }

    /// <summary>Larger payloads are quarantined (payload_too_large) with their first bytes kept.</summary>
    public int MaxPayloadBytes { get; set; } = 256 * 1024;
}
