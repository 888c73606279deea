using System.Buffers;
using System.Threading.Channels;
using CityGateway.Core;

namespace CityGateway.Storage.Influx;

/// <summary>
/// Every point one journal frame produced, encoded, for the writer: the hand-off between the
/// pipeline and storage. The journal may forget the frame only once all <see cref="Count"/> of
/// them are stored, whichever batches they travel in; a frame that produced none (every reading
/// quarantined, a heartbeat) is stored as soon as the frames before it are. <see cref="Lines"/>
/// is rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/>; the writer returns it.
/// </summary>
public readonly record struct FramePoints(long Sequence, EncodedPoint[] Lines, int Count);

/// <summary>The bounded queues into the InfluxDB writer, its side of the hand-off from the pipeline.
/// They wait when full: nothing is dropped for lack of room.</summary>
public sealed class WriterQueues
{
    /// <summary>Bound of <see cref="Points"/>: exchange releases and partner feeds, a few thousand points at a time.</summary>
    public const int OwnPointCapacity = 10000;

    /// <param name="frameCapacity">Bound of <see cref="Frames"/> (Gateway:Pipeline:FrameQueueCapacity).</param>
    public WriterQueues(int frameCapacity = 10000)
    {
        Frames = Channel.CreateBounded<FramePoints>(new BoundedChannelOptions(frameCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
    }

    /// <summary>
    /// Hands the writer the points of journal frame <paramref name="sequence"/> (none, when every
    /// reading was refused): encoded into <see cref="Lines"/> before this returns, so the caller may
    /// reuse <paramref name="points"/> at once; waits while the queue is full. One thread only.
    /// </summary>
    public ValueTask AddFrameAsync(long sequence, List<Point> points, CancellationToken ct = default)
    {
        var lines = points.Count == 0 ? [] : ArrayPool<EncodedPoint>.Shared.Rent(points.Count);
        for (int i = 0; i < points.Count; i++) lines[i] = Lines.Append(points[i]);
        var item = new FramePoints(sequence, lines, points.Count);
        return Frames.Writer.TryWrite(item) ? ValueTask.CompletedTask : Frames.Writer.WriteAsync(item, ct);
    }

    /// <summary>Frames from the journal, in journal order, with their points.</summary>
    public Channel<FramePoints> Frames { get; }

    /// <summary>Where the pipeline encodes the lines it queues in <see cref="Frames"/>; the writer releases them.</summary>
    public LineArena Lines { get; } = new();

    /// <summary>Points that come from no journal frame (exchange releases, partner feeds): written as
    /// they are, never committed. Writers wait for room.</summary>
    public Channel<Point> Points { get; } = Channel.CreateBounded<Point>(new BoundedChannelOptions(OwnPointCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    /// <summary>The gateway's own metrics, kept apart so that a full point queue (InfluxDB down) does not
    /// crowd them out: the writer adds them to its batches; the oldest go first if it cannot keep up.</summary>
    public Channel<Point> SelfMetrics { get; } = Channel.CreateBounded<Point>(new BoundedChannelOptions(2000)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
    });
}
