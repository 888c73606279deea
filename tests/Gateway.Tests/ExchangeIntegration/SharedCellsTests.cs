using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Privacy;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// One noisy answer per cell for every partner, the city ledger charged once, released figures that
/// pin down no device, and lost release files restored without fresh noise: against a running
/// gateway with the fleet's data in InfluxDB.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class SharedCellsTests(ServicesFixture services, ITestOutputHelper output)
{
    private static readonly string[] PayloadMembers = ["city", "partner", "agreementVersion", "sequence", "window", "epsilon", "rows"];
    private static readonly string[] RowMembers = ["district", "domain", "metric", "aggregate", "value"];

    private static string Cell(JsonNode payload, JsonNode row) =>
        $"{payload["window"]!["start"]}|{row["district"]}|{row["domain"]}|{row["metric"]}|{row["aggregate"]}";

    /// <summary>Cell → value of everything released to <paramref name="partner"/>, read from the release store.</summary>
    private static Dictionary<string, double> Released(ExchangeContext x, string partner)
    {
        var cells = new Dictionary<string, double>();
        foreach (var r in x.Releases.After(partner, 0, 10_000))
        {
            var p = ReleaseStore.Payload(r)!;
            Assert.Equal(PayloadMembers.Order(), p.Select(m => m.Key).Order());
            foreach (var row in p["rows"]!.AsArray())
            {
                Assert.Equal(RowMembers.Order(), row!.AsObject().Select(m => m.Key).Order());
                cells.Add(Cell(p, row), row["value"]!.GetValue<double>());
            }
        }
        return cells;
    }

    [Fact]
    public async Task Thirty_partners_receive_the_identical_value_per_cell_and_the_city_ledger_is_charged_once()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx, 1000, extraPartnersOfA: 29);
        await cities.FeedAsync();
        var a = cities.A;
        var now = DateTimeOffset.UtcNow;
        int made = await a.ReleaseJob.RunOnceAsync(now, default);
        var partners = new[] { "cityb" }.Concat(cities.ExtraKeysOfA.Keys).ToList();
        Assert.Equal(30, partners.Count);
        int windows = a.Exchange.Releases.Count("cityb");
        Assert.True(windows >= 6, $"only {windows} windows released");
        Assert.Equal(30 * windows, made);

        var copies = partners.ToDictionary(p => p, p => Released(a.Exchange, p));
        var reference = copies["cityb"];
        Assert.Contains(reference.Keys, k => k.Contains("|traffic|intensity|sum"));
        Assert.Contains(reference.Keys, k => k.Contains("|water|flow|mean"));
        foreach (var (partner, cells) in copies)
            Assert.True(reference.OrderBy(c => c.Key).SequenceEqual(cells.OrderBy(c => c.Key)), $"{partner} got other values than cityb");
        // Averaging the thirty copies removes nothing: the average is each copy.
        foreach (var cell in reference.Keys)
            Assert.Equal(reference[cell], partners.Average(p => copies[p][cell]), 9);

        // The same through the partner API, with each partner's own key.
        foreach (var (partner, key) in cities.ExtraKeysOfA.Take(5).Append(new("cityb", a.KeyForPartner)))
        {
            using var http = new HttpClient();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var feed = JsonNode.Parse(await http.GetStringAsync(a.Url + "/api/exchange/v1/feed?limit=500"))!["releases"]!.AsArray();
            var served = new Dictionary<string, double>();
            foreach (var release in feed)
                foreach (var row in release!["payload"]!["rows"]!.AsArray())
                    served.Add(Cell(release["payload"]!, row!), row!["value"]!.GetValue<double>());
            Assert.True(reference.OrderBy(c => c.Key).SequenceEqual(served.OrderBy(c => c.Key)), $"{partner}'s feed differs");
        }

        // City ledger: one entry per (window, personal metric), whoever received it: traffic and water once each.
        var city = a.Exchange.CityLedger.Entries();
        Assert.Equal(2 * windows, city.Count);
        Assert.Equal(city.Count, city.Select(e => e.ReleaseId).Distinct().Count());
        Assert.Equal(0.5 * windows, city.Where(e => e.Partner == "traffic").Sum(e => e.Epsilon), 9);
        Assert.Equal(0.5 * windows, city.Where(e => e.Partner == "water").Sum(e => e.Epsilon), 9);
        // Each partner's own ledger: the ε of the cells it received, 1.0 per window, data-independent.
        foreach (var p in partners) Assert.Equal(1.0 * windows, a.Exchange.Ledger.Entries(p).Sum(e => e.Epsilon), 9);
        foreach (var r in a.Exchange.Releases.After("cityb", 0, 100)) Assert.Equal(1.0, ReleaseStore.Payload(r)!["epsilon"]!.GetValue<double>());
        // Each group covers every district of the registry (a data-independent set), released or not.
        var registryDistricts = CityGateway.Normalisation.DeviceRegistry.LoadFile(a.Fleet.RegistryPath!).Devices.Select(d => d.District).Distinct().Order(StringComparer.Ordinal);
        foreach (var e in city)
        {
            var parts = e.ReleaseId.Split('/');
            var key = new CellGroupKey(DateTimeOffset.FromUnixTimeSeconds(long.Parse(parts[4], System.Globalization.CultureInfo.InvariantCulture)),
                TimeSpan.FromSeconds(long.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture)), parts[0], parts[1], parts[2]);
            Assert.Equal(CellStore.Lookup.Found, a.Exchange.Cells.TryGet(key, out var group));
            Assert.Equal(registryDistricts, group!.Values.Keys.Order(StringComparer.Ordinal));
        }
        output.WriteLine($"{made} releases, {reference.Count} cells per partner, city ledger {city.Count} entries");
    }

    [Fact]
    public async Task When_the_city_budget_of_a_dataset_is_spent_its_cells_go_to_no_partner_and_no_noise_is_drawn()
    {
        // Traffic and water cost ε 0.5 per window each; a city budget of 1.5 pays for three windows of each.
        await using var cities = await TwoCities.StartAsync(services.Influx, 1000, 1, "--Gateway:Exchange:CityEpsilonPerMonth=1.5");
        await cities.FeedAsync();
        var a = cities.A;
        var now = DateTimeOffset.UtcNow;
        await a.ReleaseJob.RunOnceAsync(now, default);
        int windows = a.Exchange.Releases.Count("cityb");
        Assert.True(windows >= 6, $"only {windows} windows released");
        var city = a.Exchange.CityLedger.Entries();
        Assert.Equal(3, city.Count(e => e.Partner == "traffic"));
        Assert.Equal(3, city.Count(e => e.Partner == "water"));
        Assert.Equal(2 * (windows - 3), a.ReleaseJob.CityRefusedGroups);
        foreach (var partner in new[] { "cityb", "p01" })
        {
            var payloads = a.Exchange.Releases.After(partner, 0, 100).Select(r => ReleaseStore.Payload(r)!).ToList();
            // The first three windows carry traffic and water (ε 1.0), the later ones environment only (ε 0).
            Assert.Equal([.. Enumerable.Repeat(1.0, 3), .. Enumerable.Repeat(0.0, windows - 3)], payloads.Select(p => p["epsilon"]!.GetValue<double>()));
            Assert.All(payloads.Skip(3), p => Assert.All(p["rows"]!.AsArray(), r => Assert.Equal("environment", r!["domain"]!.GetValue<string>())));
            Assert.Equal(3.0, a.Exchange.Ledger.Entries(partner).Sum(e => e.Epsilon), 9);
        }
        Assert.Contains(File.ReadLines(Path.Combine(a.DataPath, "audit.jsonl")), l => l.Contains("\"release_refused\"") && l.Contains("city budget exhausted"));
        // Refused groups are recorded: a second run neither charges nor draws anything.
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(now, default));
        Assert.Equal(city.Count, a.Exchange.CityLedger.Entries().Count);
    }

    [Fact]
    public async Task A_partner_added_later_gets_the_stored_answers_and_a_cell_group_charged_but_lost_is_refused_not_renoised()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        var a = cities.A;
        var now = DateTimeOffset.UtcNow;
        await a.ReleaseJob.RunOnceAsync(now, default);
        var cityb = Released(a.Exchange, "cityb");
        var cityEntries = a.Exchange.CityLedger.Entries().Count;
        // The stored traffic answers of one window vanish (say, an older backup of the cell store).
        var lostFile = Directory.GetFiles(Path.Combine(a.DataPath, "cells", "traffic"), "*.json", SearchOption.AllDirectories).Order().First();
        var lostWindow = DateTimeOffset.FromUnixTimeSeconds(long.Parse(Path.GetFileNameWithoutExtension(lostFile).Split('_')[1], System.Globalization.CultureInfo.InvariantCulture));
        await cities.RestartAsync(a, () =>
        {
            File.Delete(lostFile);
            File.WriteAllText(a.Dir.File("agreements/latecomer.json"), TwoCities.AgreementJson("latecomer", "LATECOMER"));
        });
        int made = await a.ReleaseJob.RunOnceAsync(now, default);
        Assert.Equal(a.Exchange.Releases.Count("cityb"), made);   // every window, for the new partner only
        Assert.Equal(1, a.ReleaseJob.Lost);
        Assert.Equal(cityEntries, a.Exchange.CityLedger.Entries().Count);
        Assert.Contains(File.ReadLines(Path.Combine(a.DataPath, "audit.jsonl")), l => l.Contains("\"release_lost\""));

        var latecomer = Released(a.Exchange, "latecomer");
        foreach (var (cell, value) in cityb)
        {
            bool lost = cell.StartsWith(lostWindow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture) + "|", StringComparison.Ordinal)
                        && cell.Contains("|traffic|", StringComparison.Ordinal);
            if (lost) Assert.False(latecomer.ContainsKey(cell), $"{cell} was computed again");
            else Assert.Equal(value, latecomer[cell]);
        }
        Assert.DoesNotContain(latecomer.Keys, k => !cityb.ContainsKey(k));
        // The latecomer is charged for what it received: water only in the lost window.
        var charged = a.Exchange.Ledger.Entries("latecomer").ToDictionary(e => e.WindowStart, e => e.Epsilon);
        Assert.Equal(0.5, charged[lostWindow], 9);
        Assert.All(charged.Where(c => c.Key != lostWindow), c => Assert.Equal(1.0, c.Value, 9));
    }

    [Fact]
    public async Task Released_figures_of_a_real_environment_cell_do_not_determine_any_device_value()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        var a = cities.A;
        await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        var figures = new Dictionary<string, List<(string Aggregate, double Value)>>();
        foreach (var r in a.Exchange.Releases.After("cityb", 0, 100))
        {
            var p = ReleaseStore.Payload(r)!;
            foreach (var row in p["rows"]!.AsArray().Where(x => x!["domain"]!.GetValue<string>() == "environment"))
            {
                var cell = $"{p["window"]!["start"]}|{row!["district"]}|{row["metric"]}";
                if (!figures.TryGetValue(cell, out var list)) figures[cell] = list = [];
                list.Add((row["aggregate"]!.GetValue<string>(), row["value"]!.GetValue<double>()));
            }
        }
        Assert.NotEmpty(figures);
        int checkedCells = 0;
        foreach (var (cell, released) in figures)
        {
            var parts = cell.Split('|');
            var start = DateTimeOffset.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            var q = $"SELECT mean(\"{parts[2]}\") FROM \"environment\" WHERE \"district\" = '{parts[1]}' " +
                    $"AND time >= {start.ToUnixTimeMilliseconds() * 1_000_000} AND time < {start.AddMinutes(TwoCities.WindowMinutes).ToUnixTimeMilliseconds() * 1_000_000} GROUP BY \"device\"";
            var devices = (await services.Influx.RowsAsync(a.Database, q)).Select(row => row["mean"].GetDouble()).ToList();
            // One exact figure per cell (no min, max or count) against at least k = 3 unknowns.
            Assert.Single(released);
            Assert.Equal("mean", released[0].Aggregate);
            Assert.True(devices.Count >= 3, $"{cell}: {devices.Count} devices");
            Assert.Equal(Math.Round(devices.Average(), 2), released[0].Value, 9);
            // The attack of the review: with mean, min and max of three devices the middle one is
            // 3·mean − min − max. Here no released figure is a device's own value (min or max).
            if (devices.Max() - devices.Min() > 0.02)
                Assert.DoesNotContain(released, f => Math.Abs(f.Value - devices.Min()) < 0.005 || Math.Abs(f.Value - devices.Max()) < 0.005);
            checkedCells++;
        }
        output.WriteLine($"{checkedCells} environment cells: one exact mean each over ≥ 3 devices, no device value released");
    }

    [Fact]
    public async Task A_deleted_release_file_is_restored_from_its_record_after_a_restart_and_a_lost_record_is_refused_not_renoised()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        var a = cities.A;
        var now = DateTimeOffset.UtcNow;
        await a.ReleaseJob.RunOnceAsync(now, default);
        var before = a.Exchange.Releases.After("cityb", 0, 100).Select(r => ReleaseStore.Payload(r)!.ToJsonString()).ToList();
        Assert.True(before.Count >= 6);
        var period = PrivacyBudgetLedger.PeriodOf(now);
        var ledgerBefore = a.Exchange.Ledger.Entries("cityb").Sum(e => e.Epsilon);
        var cityBefore = a.Exchange.CityLedger.Entries().Count;

        var files = Directory.GetFiles(Path.Combine(a.DataPath, "releases", "cityb"), "*.json").Order().ToList();
        File.Delete(files[2]);
        await cities.RestartAsync(a);
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(now, default));
        Assert.Equal(1, a.ReleaseJob.Restored);
        Assert.True(File.Exists(files[2]), "the deleted release file is written again");
        var after = a.Exchange.Releases.After("cityb", 0, 100).Select(r => ReleaseStore.Payload(r)!.ToJsonString()).ToList();
        Assert.Equal(before, after);   // same sequences, same values
        Assert.Equal(ledgerBefore, a.Exchange.Ledger.Entries("cityb").Sum(e => e.Epsilon));
        Assert.Equal(cityBefore, a.Exchange.CityLedger.Entries().Count);
        using (var http = new HttpClient())
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", a.KeyForPartner);
            var feed = JsonNode.Parse(await http.GetStringAsync(a.Url + "/api/exchange/v1/feed?limit=500"))!["releases"]!.AsArray();
            Assert.Equal(before, feed.Select(r => r!["payload"]!.ToJsonString()).ToList());
        }

        // The file and the whole record file gone: the window was charged, so it is refused and alerted, never noised again.
        File.Delete(files[3]);
        await cities.RestartAsync(a, () => File.Delete(Path.Combine(a.DataPath, "release-records.jsonl")));
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(now, default));
        Assert.Equal(1, a.ReleaseJob.Lost);
        Assert.False(File.Exists(files[3]));
        Assert.Equal(before.Count - 1, a.Exchange.Releases.Count("cityb"));
        Assert.Equal(ledgerBefore, a.Exchange.Ledger.Entries("cityb").Sum(e => e.Epsilon));
        Assert.Equal(cityBefore, a.Exchange.CityLedger.Entries().Count);
        Assert.Contains(File.ReadLines(Path.Combine(a.DataPath, "audit.jsonl")), l => l.Contains("\"release_lost\""));
        // And it stays refused: a further run neither alerts again nor releases.
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(now, default));
        Assert.Equal(1, a.ReleaseJob.Lost);
        output.WriteLine($"period {period}: {before.Count} releases, one restored from its record, one lost and refused; ε {ledgerBefore} unchanged");
    }
}
