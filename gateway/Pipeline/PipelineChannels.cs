using System.Threading.Channels;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Pipeline;

public sealed class PipelineOptions
{
    /// <summary>Points waiting for the InfluxDB writer; when full, decoding waits.</summary>
    public int PointQueueCapacity { get; set; } = 50000;

    /// <summary>Larger payloads are quarantined (payload_too_large) with their first bytes kept.</summary>
    public int MaxPayloadBytes { get; set; } = 256 * 1024;
}

/// <summary>
/// A point for the writer, with the journal sequence of the frame it came from: already encoded
/// (<see cref="Line"/>, from the pipeline) or as a <see cref="Point"/> (exchange and federation,
/// sequence -1). An item with neither marks a frame that produced no point (all quarantined), so
/// its sequence can be committed too.
/// </summary>
public readonly record struct PipelineItem(Point? Point, long Sequence, EncodedPoint Line = default);

/// <summary>The bounded queue between normaliser and writer. It waits when full: nothing is dropped for lack of room.</summary>
public sealed class PipelineChannels
{
    public PipelineChannels(IOptions<PipelineOptions> options)
    {
        Points = Channel.CreateBounded<PipelineItem>(new BoundedChannelOptions(options.Value.PointQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    public Channel<PipelineItem> Points { get; }

    /// <summary>Where the pipeline encodes the lines it queues in <see cref="Points"/>; the writer releases them.</summary>
    public LineArena Lines { get; } = new();

    /// <summary>The gateway's own metrics, kept apart so that a full point queue (InfluxDB down) does not
    /// crowd them out: the writer adds them to its batches; the oldest go first if it cannot keep up.</summary>
    public Channel<Point> SelfMetrics { get; } = Channel.CreateBounded<Point>(new BoundedChannelOptions(2000)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
    });
}
