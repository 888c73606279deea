using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Privacy;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Exchange;

/// <summary>The personal-cell mechanism (noisy threshold), the one-district rule, and the durable cell and release records.</summary>
public sealed class CellMechanismTests : IDisposable
{
    private readonly TempDir _dir = new("cells");

    public void Dispose() => _dir.Dispose();

    private static ReleaseSpec Traffic(string aggregate = "sum", int k = 3, double? minVolume = null) => new()
    {
        Aggregate = aggregate, Lower = 0, Upper = 400, Granularity = 1, Epsilon = 1.0, MinDevices = k, MinVolume = minVolume,
    };

    [Theory]
    [InlineData("sum")]
    [InlineData("mean")]
    [InlineData("count")]
    public void A_cell_without_any_device_still_draws_all_its_noise_and_spends_its_epsilon(string aggregate)
    {
        var source = new SeededRandomSource(7);
        var r = NoiseCalibration.ReleaseCell([], Traffic(aggregate), source);
        Assert.True(source.BytesUsed > 0, "noise is drawn whatever the data");
        Assert.Equal(1.0, r.EpsilonSpent);
        Assert.Equal(NoiseCalibration.CellPlan(Traffic(aggregate)).Count, r.Noise.Count);
        Assert.Equal(-1, r.Devices);
    }

    [Fact]
    public void The_release_decision_is_the_noisy_count_against_k_never_the_exact_count()
    {
        double[] values = [100, 120, 90];   // exactly k = 3 devices
        int released = 0, suppressed = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var r = NoiseCalibration.ReleaseCell(values, Traffic("sum", k: 3), new SeededRandomSource(seed));
            var replay = new SeededRandomSource(seed);
            long sum = 310 + DiscreteLaplace.Sample(0.5, 400, replay);
            long count = 3 + DiscreteLaplace.Sample(0.5, 1, replay);
            Assert.Equal(count >= 3, r.Released);
            if (r.Released) { released++; Assert.Equal(sum, r.Value); }
            else { suppressed++; Assert.Equal(NoiseCalibration.FewerThanKNoisy, r.SuppressedReason); Assert.Null(r.Value); }
            Assert.Equal(1.0, r.EpsilonSpent);
        }
        // At exactly k the noisy count falls below k with a probability near one half: both happen.
        Assert.True(released > 100 && suppressed > 100, $"released {released}, suppressed {suppressed}");
    }

    [Fact]
    public void A_sum_cell_splits_epsilon_between_the_sum_and_the_threshold_count()
    {
        var plan = NoiseCalibration.CellPlan(Traffic("sum"));
        Assert.Equal(("sum", 0.5), (plan[0].Statistic, plan[0].Epsilon));
        Assert.Equal(("count", 0.5), (plan[1].Statistic, plan[1].Epsilon));
        Assert.Equal(1.0, plan.Sum(c => c.Epsilon), 1e-15);
    }

    [Fact]
    public void A_device_in_two_districts_counts_once_where_it_has_most_readings_then_by_name()
    {
        var assigned = DeviceAssignment.OneDistrictPerDevice(
        [
            new("d1", "north", 10, 2), new("d1", "south", 50, 5),      // most readings in south
            new("d2", "west", 7, 3), new("d2", "east", 8, 3),          // tie: "east" < "west"
            new("d3", "north", 1, 1),
        ]);
        Assert.Equal([50.0], assigned["south"]);
        Assert.Equal([8.0], assigned["east"]);
        Assert.Equal([1.0], assigned["north"]);
        Assert.False(assigned.ContainsKey("west"));
        Assert.Equal(3, assigned.Values.Sum(v => v.Count));
    }

    [Fact]
    public void A_stored_cell_group_is_read_back_by_a_new_store_and_never_overwritten()
    {
        var key = new CellGroupKey(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000), TimeSpan.FromMinutes(15), "traffic", "intensity", "sum");
        var group = new CellGroup(key, 0.5, false, null, new Dictionary<string, double?> { ["north"] = 812, ["south"] = null });
        new CellStore(_dir.File("cells")).Add(group);

        var again = new CellStore(_dir.File("cells"));
        Assert.Equal(CellStore.Lookup.Found, again.TryGet(key, out var read));
        Assert.Equal(812, read!.Values["north"]);
        Assert.Null(read.Values["south"]);
        Assert.Equal(0.5, read.Epsilon);
        Assert.Throws<ReleaseConflictException>(() => again.Add(group with { Values = new Dictionary<string, double?> { ["north"] = 1 } }));
        Assert.Equal(CellStore.Lookup.Absent, again.TryGet(key with { Metric = "occupancy" }, out _));

        var file = Directory.GetFiles(_dir.File("cells"), "*.json", SearchOption.AllDirectories).Single();
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(file, "{ not json");
        Assert.Equal(CellStore.Lookup.Unreadable, new CellStore(_dir.File("cells")).TryGet(key, out _));
    }

    [Fact]
    public void Release_records_survive_a_restart_and_a_torn_last_line_is_ignored()
    {
        var path = _dir.File("release-records.jsonl");
        var w = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var records = new ReleaseRecords(path);
        records.Append(new ReleaseRecord("harbour", 1, w, new JsonObject { ["sequence"] = 1 }));
        records.Append(new ReleaseRecord("harbour", 2, w.AddMinutes(15), new JsonObject { ["sequence"] = 2 }));
        Assert.Throws<ReleaseConflictException>(() => records.Append(new ReleaseRecord("harbour", 3, w, new JsonObject())));
        File.AppendAllText(path, "{\"partner\":\"harbour\",\"seq");

        var again = new ReleaseRecords(path);
        Assert.Equal(2, again.LastSequence("harbour"));
        Assert.True(again.TryGet("harbour", w.AddMinutes(15), out var r));
        Assert.Equal(2, r!.Payload["sequence"]!.GetValue<int>());
        Assert.False(again.TryGet("harbour", w.AddMinutes(30), out _));
        // The torn tail is cut off: the next append is a line of its own and reads back.
        again.Append(new ReleaseRecord("harbour", 3, w.AddMinutes(30), new JsonObject { ["sequence"] = 3 }));
        Assert.Equal(3, new ReleaseRecords(path).LastSequence("harbour"));
    }
}
