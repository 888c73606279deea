using System.Text.Json;

namespace CityGateway.Normalisation;

/// <summary>A canonical metric: its unit, physical bounds and, for gases, molar mass.</summary>
public sealed record MetricDefinition(string Domain, string Name, string Unit, double Min, double Max, double? MolarMass, string Description);

/// <summary>The canonical metrics per domain, loaded from the embedded metrics.json.</summary>
public sealed class MetricCatalog
{
    public static readonly string[] Domains = ["traffic", "water", "environment"];

    private readonly Dictionary<(string, string), MetricDefinition> _metrics = new();

    private MetricCatalog() { }

    public static MetricCatalog Default { get; } = Load();

    public IEnumerable<MetricDefinition> All => _metrics.Values;

    public bool TryGet(string domain, string metric, out MetricDefinition definition) =>
        _metrics.TryGetValue((domain, metric), out definition!);

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
                catalog._metrics[(domain.Name, m.Name)] = new MetricDefinition(
                    domain.Name, m.Name, v.GetProperty("unit").GetString()!,
                    v.GetProperty("min").GetDouble(), v.GetProperty("max").GetDouble(),
                    v.TryGetProperty("molarMass", out var mm) ? mm.GetDouble() : null,
                    v.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "");
            }
        }
        return catalog;
    }
}
