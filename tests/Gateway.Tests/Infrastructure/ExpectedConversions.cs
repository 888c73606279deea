namespace CityGateway.Tests.Infrastructure;

/// <summary>
/// The canonical metric and value of every source field the simulators send, computed here
/// independently of the gateway's unit table.
/// </summary>
public static class ExpectedConversions
{
    // The expected canonical value of each source field, computed here independently of the
    // gateway's unit table; null: sent in the canonical unit, stored as received.
    public static readonly Dictionary<string, (string Metric, Func<double, double>? Convert)> Table = new()
    {
        ["count"] = ("intensity", null),
        ["vehicles"] = ("intensity", null),
        ["occ_pct"] = ("occupancy", v => v / 100),
        ["occupancy"] = ("occupancy", null),
        ["speed_kmh"] = ("averageVehicleSpeed", null),
        ["speed_mph"] = ("averageVehicleSpeed", v => v * 1.609344),
        ["flow_lps"] = ("flow", v => v * 3.6),
        ["pressure_kpa"] = ("pressure", v => v / 100),
        ["pressure_psi"] = ("pressure", v => v * 0.0689475729),
        ["level_cm"] = ("waterLevel", v => v / 100),
        ["pH"] = ("pH", null),
        ["turbidity"] = ("turbidity", null),
        ["temp_c"] = ("temperature", null),
        ["chlorine"] = ("chlorine", null),
        ["pm25"] = ("pm25", null),
        ["pm10"] = ("pm10", null),
        ["no2"] = ("no2", null),
        ["o3"] = ("o3", null),
        ["no2_ppb"] = ("no2", v => v * 46.0055 / 24.45),
        ["o3_ppb"] = ("o3", v => v * 47.9982 / 24.45),
        ["co_ppm"] = ("co", v => v * 1000 * 28.0101 / 24.45),
        ["temp"] = ("temperature", null),
        ["temp_f"] = ("temperature", v => (v - 32) * 5 / 9),
        ["rh"] = ("relativeHumidity", null),
        ["rh_pct"] = ("relativeHumidity", v => v / 100),
        ["LAeq"] = ("LAeq", null),
        ["LAmax"] = ("LAmax", null),
        ["seq"] = ("seq", null),
        ["ph"] = ("pH", null),
        ["turb"] = ("turbidity", null),
        ["t"] = ("temperature", null),
        ["cl"] = ("chlorine", null),
    };


    /// <summary>
    /// The documented rule for converted values (README, "Canonical metrics and units"): rounded half
    /// away from zero to the metric's resolution in metrics.json.
    /// </summary>
    public static double RoundToResolution(string metric, double converted) =>
        Math.Round(converted, CityGateway.Normalisation.MetricCatalog.Default.All.First(m => m.Name == metric).Decimals, MidpointRounding.AwayFromZero);

    /// <summary>Checks the stored row against the source values (relative tolerance 1e-9).</summary>
    public static void AssertRow(IReadOnlyDictionary<string, double> source, Dictionary<string, System.Text.Json.JsonElement> row, string what)
    {
        foreach (var (field, value) in source)
        {
            Assert.True(Table.TryGetValue(field, out var e), $"no expectation for source field '{field}'");
            Assert.False(row.ContainsKey(field) && field != e.Metric, $"{what}: source name '{field}' was stored instead of '{e.Metric}'");
            Assert.True(row.TryGetValue(e.Metric, out var stored) && stored.ValueKind == System.Text.Json.JsonValueKind.Number,
                $"{what}: {e.Metric} missing for {field}");
            double want = e.Convert is null ? value : RoundToResolution(e.Metric, e.Convert(value));
            Assert.True(Math.Abs(stored.GetDouble() - want) <= 1e-9 * Math.Max(1, Math.Abs(want)),
                $"{what} {field}={value}: stored {e.Metric}={stored.GetDouble()}, expected {want}");
        }
    }
}
