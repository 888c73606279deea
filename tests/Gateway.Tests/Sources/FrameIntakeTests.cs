using System.Text;
using CityGateway.Core;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Sources;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Sources;

public sealed class FrameIntakeTests
{
    private static readonly byte[] Payload = Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":4.5}""");

    [Fact]
    public void A_frame_is_stamped_counted_and_appended_with_its_length_as_received()
    {
        var log = new TestFrameLog();
        var metrics = TestMetrics.New();
        var intake = new FrameIntake("mqtt", log, metrics, new GatewayClock(TimeProvider.System), new RecordedIntakeEvents());
        long before = UnixTime.ToNs(DateTimeOffset.UtcNow);

        Assert.True(intake.Take("city/json/env-0001", Payload.AsSpan(0, 10), 1, Payload.Length, CancellationToken.None));

        var frame = Assert.Single(log.Frames);
        Assert.Equal(("mqtt", "city/json/env-0001", 1), (frame.Source, frame.Topic, frame.Qos));
        Assert.Equal(Payload.AsSpan(0, 10).ToArray(), frame.Payload);
        Assert.Equal(Payload.Length, frame.OriginalLength);
        Assert.True(frame.ReceivedAtNs >= before);
        Assert.Equal((1, Payload.Length), (metrics.Received, metrics.ReceivedBytes));
    }

    [Fact]
    public void A_refused_write_is_held_and_retried_until_the_disk_takes_it_and_reported_once_each_way()
    {
        var log = new TestFrameLog();
        var events = new RecordedIntakeEvents();
        var intake = new FrameIntake("serial", log, TestMetrics.New(), new GatewayClock(TimeProvider.System), events, TimeSpan.FromMilliseconds(5));
        log.FailNext(3);

        Assert.True(intake.Take("serial/water", Payload, 0, Payload.Length, CancellationToken.None));

        Assert.Single(log.Frames);
        Assert.Equal(["failed: No space left on device", "recovered after 3"], events.Events);
        Assert.Equal(0, intake.Dropped);
    }

    [Fact]
    public async Task Shutdown_during_a_retry_drops_the_frame_with_a_count()
    {
        var log = new TestFrameLog();
        var intake = new FrameIntake("mqtt", log, TestMetrics.New(), new GatewayClock(TimeProvider.System), new RecordedIntakeEvents(), TimeSpan.FromMinutes(5));
        log.FailNext(int.MaxValue);
        using var stopping = new CancellationTokenSource();
        var taking = Task.Run(() => intake.Take("city/json/x", Payload, 1, Payload.Length, stopping.Token));
        stopping.Cancel();

        Assert.False(await taking.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Empty(log.Frames);
        Assert.Equal(1, intake.Dropped);
    }

    [Fact]
    public void A_closed_log_drops_the_frame_with_a_count()
    {
        using var log = new MemoryFrameLog(4);
        log.Complete();
        var intake = new FrameIntake("serial", log, TestMetrics.New(), new GatewayClock(TimeProvider.System), new RecordedIntakeEvents());

        Assert.False(intake.Take("serial/water", Payload, 0, Payload.Length, CancellationToken.None));
        Assert.Equal(1, intake.Dropped);
    }

    [Fact]
    public async Task The_bound_is_signalled_once_per_crossing_and_again_after_room()
    {
        var log = new TestFrameLog();
        var intake = new FrameIntake("mqtt", log, TestMetrics.New(), new GatewayClock(TimeProvider.System), new RecordedIntakeEvents());
        intake.Take("t", Payload, 1, Payload.Length, CancellationToken.None);
        var first = intake.BoundReachedAsync(CancellationToken.None);
        Assert.False(first.IsCompleted);

        log.Fill();
        intake.Take("t", Payload, 1, Payload.Length, CancellationToken.None);
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(intake.AtBound);

        // Frames already read still go in while the source stops; they do not signal again.
        intake.Take("t", Payload, 1, Payload.Length, CancellationToken.None);
        var second = intake.BoundReachedAsync(CancellationToken.None);
        Assert.False(second.IsCompleted);

        var room = intake.WaitForRoomAsync(CancellationToken.None);
        Assert.False(room.IsCompleted);
        log.MakeRoom();
        await room.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(intake.AtBound);

        log.Fill();
        intake.Take("t", Payload, 1, Payload.Length, CancellationToken.None);
        await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(4, log.Frames.Length);
    }
}
