namespace CityGateway.Storage.Influx;

public enum FieldKind : byte { Float, Integer, Boolean, String }

public readonly record struct PointField(string Name, FieldKind Kind, double Float = 0, long Integer = 0, bool Boolean = false, string? Text = null)
{
    public static PointField Of(string name, double v) => new(name, FieldKind.Float, Float: v);
    public static PointField Of(string name, long v) => new(name, FieldKind.Integer, Integer: v);
    public static PointField Of(string name, bool v) => new(name, FieldKind.Boolean, Boolean: v);
    public static PointField Of(string name, string v) => new(name, FieldKind.String, Text: v);
}

/// <summary>One InfluxDB point. Tags are kept sorted by key, as InfluxDB prefers.</summary>
public sealed class Point
{
    public Point(string measurement, KeyValuePair<string, string>[] tags, long timestampNs)
    {
        Measurement = measurement;
        Array.Sort(tags, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        Tags = tags;
        TimestampNs = timestampNs;
    }

    public string Measurement { get; }
    public KeyValuePair<string, string>[] Tags { get; }
    public List<PointField> Fields { get; } = new(8);
    public long TimestampNs { get; }

    /// <summary>Where the point came from (topic or port), kept for quarantine if InfluxDB rejects it.</summary>
    public string? Origin { get; init; }

    public string? Tag(string key)
    {
        foreach (var t in Tags) if (t.Key == key) return t.Value;
        return null;
    }
}
