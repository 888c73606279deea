using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Faults;

/// <summary>Published versus stored, by device and sequence number.</summary>
public sealed record Delivery(long Published, long Stored, long Distinct, long Lost, long Duplicates, int Devices)
{
    public static readonly string[] Measurements = ["traffic", "water", "environment"];

    public static async Task<Delivery> CheckAsync(InfluxServer influx, string db, SimulationReport report)
    {
        var rows = await influx.RowsAsync(db,
            "SELECT count(\"seq\") AS n, count(distinct(\"seq\")) AS d FROM \"traffic\", \"water\", \"environment\" GROUP BY \"device\"");
        var stored = rows.ToDictionary(r => r["device"].GetString()!, r => (N: r["n"].GetInt64(), D: r["d"].GetInt64()));
        long published = 0, total = 0, distinct = 0, lost = 0, duplicates = 0;
        foreach (var (device, count) in report.ByDevice)
        {
            published += count;
            var (n, d) = stored.GetValueOrDefault(device);
            total += n;
            distinct += d;
            lost += Math.Max(0, count - d);
            duplicates += n - d;
        }
        return new Delivery(published, total, distinct, lost, duplicates, report.ByDevice.Count);
    }

    /// <summary>
    /// Waits until every published message is stored and two checks a second apart agree, or the
    /// timeout passes (then the caller asserts). InfluxDB 1.x computes the two counts of one query
    /// from what it holds at slightly different moments, so while a backlog is still being written
    /// (or compacted) they can disagree; settled figures are what the test judges.
    /// </summary>
    public static async Task<Delivery> WaitForAsync(InfluxServer influx, string db, SimulationReport report, TimeSpan timeout)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Delivery? previous = null;
        while (true)
        {
            var last = await CheckAsync(influx, db, report);
            bool settled = previous is not null && previous.Stored == last.Stored && previous.Distinct == last.Distinct;
            if ((last.Lost == 0 && settled) || sw.Elapsed > timeout) return last;
            previous = last;
            await Task.Delay(1000);
        }
    }

    public void Print(ITestOutputHelper output, string scenario) =>
        output.WriteLine($"{scenario}: published {Published}, stored {Stored} ({Distinct} distinct), lost {Lost}, duplicates {Duplicates}, devices {Devices}");
}
