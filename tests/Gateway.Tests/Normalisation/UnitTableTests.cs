using CityGateway.Normalisation;

namespace CityGateway.Tests.Normalisation;

public class UnitTableTests
{
    private static readonly UnitTable Units = UnitTable.Default;

    private static MetricDefinition Metric(string domain, string name)
    {
        Assert.True(MetricCatalog.Default.TryGet(domain, name, out var m), $"{domain}.{name} is not in the catalogue");
        return m;
    }

    private static double Convert(string unit, string domain, string metric, double value)
    {
        Assert.True(Units.TryGetConverter(unit, Metric(domain, metric), out var c), $"no conversion from '{unit}' to {metric}");
        return c.Apply(value);
    }

    [Theory]
    [InlineData("degF", 32, 0)]
    [InlineData("°F", 212, 100)]
    [InlineData("F", -40, -40)]
    [InlineData("fahrenheit", 98.6, 37)]
    [InlineData("K", 273.15, 0)]
    [InlineData("K", 300, 26.85)]
    public void Temperature_converts_to_celsius(string unit, double value, double celsius)
    {
        Assert.Equal(celsius, Convert(unit, "environment", "temperature", value), 9);
        Assert.Equal(celsius, Convert(unit, "water", "temperature", value), 9);
    }

    [Theory]
    [InlineData("mph", 60, 96.56064)]
    [InlineData("mi/h", 1, 1.609344)]
    [InlineData("m/s", 10, 36)]
    [InlineData("kph", 50, 50)]
    [InlineData("km/h", 50, 50)]
    public void Speed_converts_to_km_per_hour(string unit, double value, double kmh)
    {
        Assert.Equal(kmh, Convert(unit, "traffic", "averageVehicleSpeed", value), 9);
    }

    [Theory]
    [InlineData("%", 45, 0.45)]
    [InlineData("%RH", 100, 1)]
    [InlineData("percent", 12.5, 0.125)]
    [InlineData("/", 0.3, 0.3)]
    [InlineData("ratio", 0.3, 0.3)]
    public void Percent_converts_to_a_fraction(string unit, double value, double fraction)
    {
        Assert.Equal(fraction, Convert(unit, "environment", "relativeHumidity", value), 12);
        Assert.Equal(fraction, Convert(unit, "traffic", "occupancy", value), 12);
    }

    [Theory]
    [InlineData("L/s", 1, 3.6)]
    [InlineData("l/s", 10, 36)]
    [InlineData("lps", 2.5, 9)]
    [InlineData("L/min", 100, 6)]
    [InlineData("m3/s", 0.5, 1800)]
    [InlineData("m³/h", 7, 7)]
    public void Flow_converts_to_cubic_metres_per_hour(string unit, double value, double m3h)
    {
        Assert.Equal(m3h, Convert(unit, "water", "flow", value), 9);
    }

    [Theory]
    [InlineData("kPa", 250, 2.5)]
    [InlineData("psi", 14.5, 0.999739807)]
    [InlineData("psi", 1, 0.0689475729)]
    [InlineData("hPa", 1013.25, 1.01325)]
    [InlineData("mbar", 500, 0.5)]
    [InlineData("Pa", 100000, 1)]
    [InlineData("MPa", 0.4, 4)]
    public void Pressure_converts_to_bar(string unit, double value, double bar)
    {
        Assert.Equal(bar, Convert(unit, "water", "pressure", value), 9);
    }

    [Theory]
    [InlineData("cm", 150, 1.5)]
    [InlineData("mm", 2500, 2.5)]
    [InlineData("ft", 10, 3.048)]
    [InlineData("m", 4.2, 4.2)]
    public void Length_converts_to_metres(string unit, double value, double metres)
    {
        Assert.Equal(metres, Convert(unit, "water", "waterLevel", value), 9);
    }

    [Fact]
    public void Ppb_of_no2_uses_its_molar_mass()
    {
        Assert.True(Units.TryGetConverter("ppb", Metric("environment", "no2"), out var c));
        Assert.Equal(46.0055 / 24.45, c.Scale, 12);
        Assert.Equal(0, c.Offset);
        Assert.Equal(20 * 46.0055 / 24.45, c.Apply(20), 9); // 37.63 µg/m³
    }

    [Fact]
    public void Ppb_of_o3_uses_its_own_molar_mass()
    {
        Assert.Equal(40 * 47.9982 / 24.45, Convert("ppb", "environment", "o3", 40), 9);
    }

    [Fact]
    public void Ppm_of_co_converts_to_micrograms_per_cubic_metre()
    {
        Assert.Equal(1.5 * 1000 * 28.0101 / 24.45, Convert("ppm", "environment", "co", 1.5), 6);
    }

    [Fact]
    public void Ppb_of_a_metric_without_molar_mass_has_no_conversion()
    {
        Assert.False(Units.TryGetConverter("ppb", Metric("environment", "pm25"), out _));
    }

    [Fact]
    public void Ppm_of_chlorine_is_milligrams_per_litre()
    {
        Assert.Equal(0.8, Convert("ppm", "water", "chlorine", 0.8), 12);
    }

    [Theory]
    [InlineData("µg/m³", "ug/m3")]
    [InlineData("µg/m3", "ug/m3")]
    [InlineData("°C", "Cel")]
    [InlineData("degC", "Cel")]
    [InlineData("CELSIUS", "Cel")]          // aliases also match ignoring case
    [InlineData("Kmh", "km/h")]
    [InlineData(" kph ", "km/h")]           // surrounding spaces are trimmed
    [InlineData("dB(A)", "dBA")]
    [InlineData("vehicles", "count")]
    [InlineData("mbar", "hPa")]
    [InlineData("l/s", "L/s")]
    [InlineData("furlongs", "furlongs")]    // unknown names stay as given
    public void Aliases_resolve_to_canonical_names(string alias, string canonical)
    {
        Assert.Equal(canonical, Units.Canonicalise(alias));
    }

    [Theory]
    [InlineData("µg/m³", "pm25", 12.5)]
    [InlineData("ug/m3", "pm25", 12.5)]
    [InlineData("mg/m³", "pm25", 12500)]
    public void Aliased_units_convert(string unit, string metric, double expected)
    {
        Assert.Equal(expected, Convert(unit, "environment", metric, 12.5), 9);
    }

    [Fact]
    public void No_unit_is_the_canonical_unit()
    {
        Assert.True(Units.TryGetConverter(null, Metric("environment", "temperature"), out var c));
        Assert.Equal(UnitTable.Converter.Identity, c);
        Assert.True(Units.TryGetConverter("  ", Metric("environment", "temperature"), out c));
        Assert.Equal(21.5, c.Apply(21.5));
    }

    [Theory]
    [InlineData("furlongs", "environment", "temperature")]
    [InlineData("km/h", "environment", "temperature")]     // a known unit of another quantity
    [InlineData("mph", "traffic", "occupancy")]
    [InlineData("degF", "water", "pressure")]
    [InlineData("ppb", "water", "chlorine")]
    [InlineData("Cel", "traffic", "intensity")]
    public void Unknown_or_unconvertible_unit_fails(string unit, string domain, string metric)
    {
        Assert.False(Units.TryGetConverter(unit, Metric(domain, metric), out _));
    }

    [Fact]
    public void Catalogue_has_the_documented_canonical_units()
    {
        Assert.Equal("Cel", Metric("environment", "temperature").Unit);
        Assert.Equal("ug/m3", Metric("environment", "no2").Unit);
        Assert.Equal(46.0055, Metric("environment", "no2").MolarMass);
        Assert.Equal("km/h", Metric("traffic", "averageVehicleSpeed").Unit);
        Assert.Equal("m3/h", Metric("water", "flow").Unit);
        Assert.Equal("bar", Metric("water", "pressure").Unit);
        Assert.False(MetricCatalog.Default.TryGet("traffic", "temperature", out _));
        Assert.All(MetricCatalog.Default.All, m => Assert.Contains(m.Domain, MetricCatalog.Domains));
    }
}
