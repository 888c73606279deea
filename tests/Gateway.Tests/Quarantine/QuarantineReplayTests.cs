using System.Text;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Quarantine;

/// <summary>Replay puts a frame back once, however many of its fields were quarantined.</summary>
public sealed class QuarantineReplayTests : IDisposable
{
    private const long Now = 1_700_000_000_000_000_000;

    private readonly TempDir _dir = new("replay");
    private readonly QuarantineStore _store;
    private readonly MemoryFrameLog _log = new(64);

    public QuarantineReplayTests()
    {
        _store = new QuarantineStore(Options.Create(new QuarantineOptions { Path = _dir.File("quarantine.jsonl") }), NullLogger<QuarantineStore>.Instance);
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private static RawFrame Frame(string payload, long receivedAt = Now, string source = "mqtt") =>
        new(source, "city/json/environment/env-0001", Encoding.UTF8.GetBytes(payload), receivedAt, 1, Encoding.UTF8.GetByteCount(payload));

    [Fact]
    public void Entries_of_one_frame_are_replayed_as_one_frame()
    {
        var frame = Frame("""{"device":"env-0001","pm25":-1,"lux":3,"temp":999}""");
        _store.Add("out_of_bounds", "pm25 = -1", frame, "city/json/#", "env-0001", "pm25");
        _store.Add("unknown_field", "field 'lux'", frame, "city/json/#", "env-0001", "lux");
        _store.Add("out_of_bounds", "temperature = 999", frame, "city/json/#", "env-0001", "temp");
        // Same topic and payload, another receive time: another frame.
        _store.Add("out_of_bounds", "pm25 = -1", Frame("""{"device":"env-0001","pm25":-1,"lux":3,"temp":999}""", Now + 1), "city/json/#", "env-0001", "pm25");

        var outcome = QuarantineEndpoints.ReplaySelected(new ReplayRequest(null, "out_of_bounds", null), _store, _log);

        Assert.Equal(3, outcome.ReplayedIds.Count);
        Assert.Equal(2, outcome.Frames);
        Assert.Equal(2, _log.Stats.Pending);
        // Every entry of a replayed frame is marked, the unselected unknown_field one included.
        Assert.Equal(_store.ReadAll().Select(e => e.Id!).ToHashSet(), _store.ReplayedIds());

        var again = QuarantineEndpoints.ReplaySelected(new ReplayRequest(null, "unknown_field", null), _store, _log);
        Assert.Equal(0, again.Frames);
        Assert.Single(again.Skipped);
        Assert.Equal(2, _log.Stats.Pending);
    }

    [Fact]
    public void A_forced_replay_of_a_frame_and_of_its_replay_puts_it_back_once()
    {
        var payload = """{"device":"env-0001","pm25":-1}""";
        _store.Add("out_of_bounds", "pm25 = -1", Frame(payload), "city/json/#", "env-0001", "pm25");
        _store.Add("out_of_bounds", "pm25 = -1", Frame(payload, source: "mqtt" + RawFrame.ReplaySuffix), "city/json/#", "env-0001", "pm25");

        var outcome = QuarantineEndpoints.ReplaySelected(new ReplayRequest(null, "out_of_bounds", null, Force: true), _store, _log);

        Assert.Equal(2, outcome.ReplayedIds.Count);
        Assert.Equal(1, outcome.Frames);
        Assert.Equal(1, _log.Stats.Pending);
    }
}
