using System.Threading.Channels;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Pipeline;

public sealed class PipelineOptions
{
    /// <summary>Frames waiting for decoding; when full, sources wait (backpressure to the broker).</summary>
    public int FrameQueueCapacity { get; set; } = 10000;

    /// <summary>Points waiting for the InfluxDB writer; when full, decoding waits.</summary>
    public int PointQueueCapacity { get; set; } = 50000;

    /// <summary>Larger payloads are quarantined (payload_too_large) with their first bytes kept.</summary>
    public int MaxPayloadBytes { get; set; } = 256 * 1024;
}

/// <summary>The bounded queues between the stages. Both wait when full: nothing is dropped for lack of room.</summary>
public sealed class PipelineChannels
{
    public PipelineChannels(IOptions<PipelineOptions> options)
    {
        var o = options.Value;
        Frames = Channel.CreateBounded<RawFrame>(new BoundedChannelOptions(o.FrameQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        Points = Channel.CreateBounded<Point>(new BoundedChannelOptions(o.PointQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    public Channel<RawFrame> Frames { get; }
    public Channel<Point> Points { get; }

    public int Depth => Frames.Reader.Count + Points.Reader.Count;
}
