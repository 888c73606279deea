namespace CityGateway.Core;

public enum FieldKind : byte { Float, Integer, Boolean, String }

public readonly record struct PointField(string Name, FieldKind Kind, double Float = 0, long Integer = 0, bool Boolean = false, string? Text = null)
{
    public static PointField Of(string name, double v) => new(name, FieldKind.Float, Float: v);
    public static PointField Of(string name, long v) => new(name, FieldKind.Integer, Integer: v);
    public static PointField Of(string name, bool v) => new(name, FieldKind.Boolean, Boolean: v);
    public static PointField Of(string name, string v) => new(name, FieldKind.String, Text: v);
}

/// <summary>
/// One time-series point (measurement, tags, fields, timestamp): what the normaliser, the exchange
/// and the self-metrics produce and the writer stores. Tags are kept sorted by key, as InfluxDB prefers.
/// </summary>
public sealed class Point
{
    public Point(string measurement, KeyValuePair<string, string>[] tags, long timestampNs)
    {
        Array.Sort(tags, TagOrder.Instance);
        Measurement = measurement;
        Tags = tags;
        TimestampNs = timestampNs;
    }

    /// <summary>A point of a known series: <paramref name="series"/> holds tags already sorted and their line-protocol form.</summary>
    internal Point(Series series, long timestampNs)
    {
        Measurement = series.Measurement;
        Tags = series.Tags;
        Series = series;
        TimestampNs = timestampNs;
    }

    public string Measurement { get; private set; }
    public KeyValuePair<string, string>[] Tags { get; private set; }
    public List<PointField> Fields { get; } = new(8);
    public long TimestampNs { get; private set; }

    /// <summary>Where the point came from (topic or port), kept for quarantine if InfluxDB rejects it.</summary>
    public string? Origin { get; set; }

    /// <summary>The series this point belongs to, when the normaliser made it; null for others.</summary>
    internal Series? Series { get; private set; }

    /// <summary>Makes a recycled point a new point of <paramref name="series"/>, with no fields.</summary>
    internal void Reset(Series series, long timestampNs, string? origin)
    {
        Measurement = series.Measurement;
        Tags = series.Tags;
        Series = series;
        TimestampNs = timestampNs;
        Origin = origin;
        Fields.Clear();
    }

    public string? Tag(string key)
    {
        foreach (var t in Tags) if (t.Key == key) return t.Value;
        return null;
    }

    internal sealed class TagOrder : IComparer<KeyValuePair<string, string>>
    {
        public static readonly TagOrder Instance = new();
        public int Compare(KeyValuePair<string, string> a, KeyValuePair<string, string> b) => string.CompareOrdinal(a.Key, b.Key);
    }
}

/// <summary>
/// A measurement with its tags (sorted): what the points of one device share, built once and reused
/// for every point. The writer keeps its encoded form of the series here (line protocol's
/// "traffic,city=lumen,device=tc-01"), made on first use.
/// </summary>
internal sealed class Series
{
    public Series(string measurement, KeyValuePair<string, string>[] tags)
    {
        Array.Sort(tags, Point.TagOrder.Instance);
        Measurement = measurement;
        Tags = tags;
    }

    public string Measurement { get; }
    public KeyValuePair<string, string>[] Tags { get; }

    /// <summary>The storage side's encoded form of this series, or null before its first point is
    /// written. Set without a lock: two threads encoding at once compute the same bytes.</summary>
    internal byte[]? Encoded;
}
