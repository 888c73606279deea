using System.Text.Json;

namespace CityGateway.Normalisation;

/// <summary>
/// Unit conversion to canonical units, driven by the embedded units.json table:
/// canonical = value * scale + offset; gas concentrations in ppb/ppm use the metric's molar mass.
/// </summary>
public sealed class UnitTable
{
    private const double MolarVolume = 24.45; // L/mol at 25 °C and 1 atm

    private readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _aliasesIgnoreCase = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<(string From, string To), Conversion> _conversions = new();

    private readonly record struct Conversion(double Scale, double Offset, bool PerMolarMass);

    public static UnitTable Default { get; } = Load();

    /// <summary>A conversion ready to apply to values of one metric.</summary>
    public readonly record struct Converter(double Scale, double Offset)
    {
        public static readonly Converter Identity = new(1, 0);

        /// <summary>The value is already in the canonical unit: stored as received, not rounded.</summary>
        public bool IsIdentity => Scale == 1 && Offset == 0;

        public double Apply(double value) => IsIdentity ? value : value * Scale + Offset;
    }

    /// <summary>Canonical spelling of a unit name (aliases resolved; unknown names returned as given).</summary>
    public string Canonicalise(string unit)
    {
        var u = unit.Trim();
        if (_aliases.TryGetValue(u, out var a)) return a;
        return _aliasesIgnoreCase.TryGetValue(u, out a) ? a : u;
    }

    /// <summary>Finds the conversion from <paramref name="sourceUnit"/> to the metric's canonical unit.</summary>
    public bool TryGetConverter(string? sourceUnit, MetricDefinition metric, out Converter converter)
    {
        converter = Converter.Identity;
        if (string.IsNullOrWhiteSpace(sourceUnit)) return true;
        var from = Canonicalise(sourceUnit);
        if (from == metric.Unit) return true;
        if (!_conversions.TryGetValue((from, metric.Unit), out var c)) return false;
        if (c.PerMolarMass)
        {
            if (metric.MolarMass is not { } mm) return false;
            converter = new Converter(c.Scale * mm / MolarVolume, 0);
        }
        else
        {
            converter = new Converter(c.Scale, c.Offset);
        }
        return true;
    }

    /// <summary>
    /// For a field that is not a canonical metric (a custom field with a unit): the canonical unit
    /// its values convert to. A canonical unit is its own; otherwise the one conversion the table
    /// has from the unit. Units converted per substance (ppb, ppm: by the metric's molar mass) have
    /// no single canonical unit, nor has a unit the table does not know; <paramref name="why"/> says which.
    /// </summary>
    public bool TryGetCanonicalUnit(string sourceUnit, IReadOnlySet<string> canonicalUnits, out string canonical, out string why)
    {
        var from = Canonicalise(sourceUnit);
        canonical = from;
        why = "";
        if (canonicalUnits.Contains(from)) return true;
        var targets = _conversions.Where(c => c.Key.From == from).ToList();
        if (targets.Any(c => c.Value.PerMolarMass))
        {
            why = $"'{sourceUnit}' converts by the molar mass of a canonical gas metric, which a custom field does not have";
            return false;
        }
        if (targets.Count != 1)
        {
            why = targets.Count == 0
                ? $"'{sourceUnit}' is neither a canonical unit ({string.Join(", ", canonicalUnits.Order(StringComparer.Ordinal))}) nor converts to one"
                : $"'{sourceUnit}' converts to several canonical units ({string.Join(", ", targets.Select(t => t.Key.To))})";
            return false;
        }
        canonical = targets[0].Key.To;
        return true;
    }

    private static UnitTable Load()
    {
        using var stream = typeof(UnitTable).Assembly.GetManifestResourceStream("CityGateway.Normalisation.units.json")
                           ?? throw new InvalidOperationException("units.json is not embedded");
        using var doc = JsonDocument.Parse(stream);
        var table = new UnitTable();
        foreach (var a in doc.RootElement.GetProperty("aliases").EnumerateObject())
        {
            table._aliases[a.Name] = a.Value.GetString()!;
            table._aliasesIgnoreCase.TryAdd(a.Name, a.Value.GetString()!);
        }
        foreach (var c in doc.RootElement.GetProperty("conversions").EnumerateArray())
        {
            table._conversions[(c.GetProperty("from").GetString()!, c.GetProperty("to").GetString()!)] = new Conversion(
                c.GetProperty("scale").GetDouble(),
                c.TryGetProperty("offset", out var o) ? o.GetDouble() : 0,
                c.TryGetProperty("perMolarMass", out var p) && p.GetBoolean());
        }
        return table;
    }
}
