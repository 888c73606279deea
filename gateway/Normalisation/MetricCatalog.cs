using System.Text.Json;

namespace CityGateway.Normalisation;

/// <summary>A canonical metric: its unit, physical bounds, resolution and, for gases, molar mass.</summary>
public sealed record MetricDefinition(string Domain, string Name, string Unit, double Min, double Max, double? MolarMass, string Description)
{
    /// <summary>Decimal places of the metric's resolution (metrics.json "resolution", a power of ten); -1: none.</summary>
    public int Decimals { get; init; } = -1;

    /// <summary>
    /// A converted value rounded to the resolution (half away from zero), so a conversion's binary
    /// noise (0.026000000000000002) is not stored. Values stored as received are not rounded.
    /// </summary>
    public double Round(double converted) =>
        Decimals < 0 ? converted : Math.Round(converted, Decimals, MidpointRounding.AwayFromZero);
}

/// <summary>The canonical metrics per domain, loaded from the embedded metrics.json.</summary>
public sealed class MetricCatalog
{
    public static readonly string[] Domains = ["traffic", "water", "environment"];

    private readonly Dictionary<(string, string), MetricDefinition> _metrics = new();
    private readonly HashSet<string> _units = new(StringComparer.Ordinal);

    private MetricCatalog() { }

    public static MetricCatalog Default { get; } = Load();

    public IEnumerable<MetricDefinition> All => _metrics.Values;

    public bool TryGet(string domain, string metric, out MetricDefinition definition) =>
        _metrics.TryGetValue((domain, metric), out definition!);

    /// <summary>The canonical units: the units of all metrics, of every domain.</summary>
    public IReadOnlySet<string> Units => _units;

    /// <summary>The domains that have a canonical metric of this name (none: the name is free for a custom field).</summary>
    public IEnumerable<string> DomainsWith(string metric) => Domains.Where(d => _metrics.ContainsKey((d, metric)));

    /// <summary>The finest resolution of the metrics in <paramref name="unit"/>, as decimal places; -1 when no metric has that unit.</summary>
    public int DecimalsOf(string unit) => _metrics.Values.Where(m => m.Unit == unit).Select(m => m.Decimals).DefaultIfEmpty(-1).Max();

    private static MetricCatalog Load()
    {
        using var stream = typeof(MetricCatalog).Assembly.GetManifestResourceStream("CityGateway.Normalisation.metrics.json")
                           ?? throw new InvalidOperationException("metrics.json is not embedded");
        using var doc = JsonDocument.Parse(stream);
        var catalog = new MetricCatalog();
        foreach (var domain in doc.RootElement.EnumerateObject())
        {
            if (domain.Name.StartsWith('_')) continue;
            foreach (var m in domain.Value.EnumerateObject())
            {
                var v = m.Value;
                var metric = new MetricDefinition(
                    domain.Name, m.Name, v.GetProperty("unit").GetString()!,
                    v.GetProperty("min").GetDouble(), v.GetProperty("max").GetDouble(),
                    v.TryGetProperty("molarMass", out var mm) ? mm.GetDouble() : null,
                    v.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "")
                {
                    Decimals = DecimalsOf(domain.Name, m.Name, v.GetProperty("resolution").GetDouble()),
                };
                catalog._metrics[(domain.Name, m.Name)] = metric;
                catalog._units.Add(metric.Unit);
            }
        }
        return catalog;
    }

    /// <summary>Decimal places of a resolution that must be a power of ten from 1 down to 1e-15 (what <see cref="Math.Round(double, int)"/> takes).</summary>
    private static int DecimalsOf(string domain, string metric, double resolution)
    {
        int decimals = (int)Math.Round(-Math.Log10(resolution));
        if (resolution > 0 && decimals is >= 0 and <= 15 && Math.Abs(resolution - Math.Pow(10, -decimals)) <= 1e-9 * resolution) return decimals;
        throw new InvalidOperationException($"metrics.json: {domain}.{metric}.resolution {resolution} is not a power of ten between 1 and 1e-15");
    }
}
