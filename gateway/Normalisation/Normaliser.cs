using CityGateway.Core;
using CityGateway.Decoding;

namespace CityGateway.Normalisation;

/// <summary>
/// Maps decoded readings to InfluxDB points: the registry gives the device's city, district, site
/// and domain (the measurement); each source field becomes its canonical metric in the canonical
/// unit, checked against physical bounds. Anything that cannot be mapped is reported as a
/// <see cref="Rejection"/> with a quarantine reason; the rest of the message still goes through.
/// The normaliser only maps: it writes nothing itself, the pipeline quarantines the rejections.
/// </summary>
public sealed class Normaliser
{
    private const int MaxTagLength = 256;
    private const int MaxFreePoints = 4096;

    /// <summary>Recycled points, per thread: a frame's points are made and recycled on the thread that handles it, without a lock.</summary>
    [ThreadStatic] private static Stack<Point>? t_free;

    private readonly Func<DeviceRegistry> _registry;
    private readonly UnitTable _units;
    private readonly MetricCatalog _catalog;
    private readonly long _maxFutureNs;
    private readonly long _maxAgeNs;

    public Normaliser(Func<DeviceRegistry> registry, NormalisationOptions options, UnitTable? units = null, MetricCatalog? catalog = null)
    {
        _registry = registry;
        _units = units ?? UnitTable.Default;
        _catalog = catalog ?? MetricCatalog.Default;
        _maxFutureNs = options.MaxFutureSkew.Ticks * 100;
        _maxAgeNs = options.MaxAge.Ticks * 100;
    }

    /// <summary>
    /// Appends the frame's points to <paramref name="points"/> and what it refused to
    /// <paramref name="rejections"/> (both lists are the caller's, reused between frames); returns
    /// how many rejections it appended.
    /// </summary>
    public int Normalise(RawFrame frame, List<Reading> readings, List<Point> points, List<Rejection> rejections)
    {
        var registry = _registry();
        int firstRejection = rejections.Count;
        int firstPoint = points.Count;
        string? lastUnknown = null;
        IReadOnlyList<KeyValuePair<string, string>>? rejectedTags = null;
        // A message's readings share their device and tags: look each up once per frame, not per field.
        string? lastId = null;
        RegisteredDevice? lastDevice = null;
        var memo = new SeriesMemo();
        void Reject(in Reading r, string reason, string detail) => rejections.Add(new Rejection(reason, detail, r.DeviceId, r.Field));

        // By reference: a reading is a large struct, and a frame has several.
        foreach (ref readonly var r in System.Runtime.InteropServices.CollectionsMarshal.AsSpan(readings))
        {

            if (r.Kind == ReadingKind.Invalid)
            {
                Reject(r, r.ErrorReason ?? QuarantineReasons.MalformedPayload, r.Error ?? "invalid value");
                continue;
            }
            if (!ReferenceEquals(r.DeviceId, lastId))
            {
                lastId = r.DeviceId;
                lastDevice = registry.TryGet(r.DeviceId, out var found) ? found : null;
            }
            if (lastDevice is not { } device)
            {
                // One entry per unknown device and frame, not one per field.
                if (lastUnknown != r.DeviceId)
                {
                    lastUnknown = r.DeviceId;
                    rejections.Add(new Rejection(QuarantineReasons.UnknownDevice,
                        $"device '{Timestamps.Truncate(r.DeviceId)}' is not in the device registry", r.DeviceId));
                }
                continue;
            }
            long ts = r.TimestampNs ?? frame.ReceivedAtNs;
            if (ts > frame.ReceivedAtNs + _maxFutureNs || ts < frame.ReceivedAtNs - _maxAgeNs)
            {
                Reject(r, QuarantineReasons.ClockSkew,
                    $"device time {UnixTime.FromNs(ts):O} is {FormatSkew(ts - frame.ReceivedAtNs)} from the receive time {UnixTime.FromNs(frame.ReceivedAtNs):O}");
                continue;
            }

            ResolvedField? mapping = device.Type.Fields.GetValueOrDefault(r.Field);
            MetricDefinition? metric = mapping?.Metric;
            if (mapping is null)
            {
                if (!_catalog.TryGet(device.Domain, r.Field, out metric!))
                {
                    Reject(r, QuarantineReasons.UnknownField,
                        $"field '{Timestamps.Truncate(r.Field)}' is neither mapped for device type '{device.Type.Name}' nor a canonical {device.Domain} metric");
                    continue;
                }
            }
            else if (mapping.Ignored)
            {
                continue;
            }

            PointField field;
            if (metric is null)
            {
                double number = r.Number;
                if (mapping!.CustomUnit is { } custom && r.Kind == ReadingKind.Number)
                {
                    // Declared with a unit: stored in the canonical unit, as a canonical metric would be.
                    var unit = r.Unit ?? mapping.DefaultUnit;
                    if (!TryGetConverter(mapping, unit, custom, out var converter))
                    {
                        Reject(r, QuarantineReasons.UnknownUnit, $"no conversion from '{unit}' to {custom.Name}'s unit '{custom.Unit}'");
                        continue;
                    }
                    if (!converter.IsIdentity)
                    {
                        if (mapping.CustomType == "integer")
                        {
                            Reject(r, QuarantineReasons.UnknownUnit, $"'{unit}' converts {custom.Name} to '{custom.Unit}', which its type integer cannot hold exactly");
                            continue;
                        }
                        number = custom.Round(converter.Apply(number));
                        if (!double.IsFinite(number))
                        {
                            Reject(r, QuarantineReasons.NonFinite, $"'{r.Field}' converts to a non-finite value");
                            continue;
                        }
                    }
                }
                if (!TryCustom(r, number, mapping, out field, out var error)) { Reject(r, QuarantineReasons.WrongType, error); continue; }
            }
            else
            {
                if (r.Kind != ReadingKind.Number)
                {
                    Reject(r, QuarantineReasons.WrongType, $"'{r.Field}' must be a number for {metric.Name}, got {Describe(r)}");
                    continue;
                }
                var unit = r.Unit ?? mapping?.DefaultUnit;
                if (!TryGetConverter(mapping, unit, metric, out var converter))
                {
                    Reject(r, QuarantineReasons.UnknownUnit, $"no conversion from '{unit}' to {metric.Name}'s unit '{metric.Unit}'");
                    continue;
                }
                // Rounded to the metric's resolution only when converted; a canonical value is stored as received.
                double value = converter.IsIdentity ? r.Number : metric.Round(converter.Apply(r.Number));
                if (!double.IsFinite(value))
                {
                    Reject(r, QuarantineReasons.NonFinite, $"'{r.Field}' converts to a non-finite value");
                    continue;
                }
                if (value < metric.Min || value > metric.Max)
                {
                    Reject(r, QuarantineReasons.OutOfBounds,
                        $"{metric.Name} = {value:G6} {metric.Unit} is outside [{metric.Min:G6}, {metric.Max:G6}]");
                    continue;
                }
                field = PointField.Of(metric.Name, value);
            }

            // A bad tag is quarantined once per frame: the message's other fields share it and go with it.
            if (rejectedTags is not null && r.Tags is not null && r.Tags.SequenceEqual(rejectedTags)) continue;
            var point = FindOrAddPoint(points, firstPoint, device, ts, r.Tags, frame, rejections, ref memo);
            if (point is null)
            {
                rejectedTags = r.Tags;
                continue;
            }
            AddOrReplace(point, field);
        }
        // A point whose every field was rejected is not written.
        for (int i = points.Count - 1; i >= firstPoint; i--)
            if (points[i].Fields.Count == 0) points.RemoveAt(i);
        return rejections.Count - firstRejection;
    }

    private static void AddOrReplace(Point point, PointField field)
    {
        var fields = point.Fields;
        for (int i = 0; i < fields.Count; i++)
        {
            if (fields[i].Name == field.Name) { fields[i] = field; return; }
        }
        fields.Add(field);
    }

    private Point? FindOrAddPoint(List<Point> points, int first, RegisteredDevice device, long ts,
        IReadOnlyList<KeyValuePair<string, string>>? extraTags, RawFrame frame, List<Rejection> rejections, ref SeriesMemo memo)
    {
        string? badTag = null;
        var series = memo.Device == device && ReferenceEquals(memo.Tags, extraTags) && memo.Series is not null
            ? memo.Series
            : memo.Remember(device, extraTags, SeriesOf(device, extraTags, out badTag));
        if (series is null)
        {
            rejections.Add(new Rejection(QuarantineReasons.WrongType, $"tag '{badTag}' has control characters or is longer than {MaxTagLength}",
                device.Id, badTag));
            return null;
        }
        for (int i = first; i < points.Count; i++)
        {
            var p = points[i];
            if (p.TimestampNs == ts && ReferenceEquals(p.Series, series)) return p;
        }
        var point = Rent(series, ts, frame.Topic);
        points.Add(point);
        return point;
    }

    /// <summary>The conversion for a mapped field, remembered on the field for the unit it last came in.</summary>
    private bool TryGetConverter(ResolvedField? mapping, string? unit, MetricDefinition metric, out UnitTable.Converter converter)
    {
        if (mapping?.LastConversion is { } last && last.Units == _units && string.Equals(last.Unit, unit, StringComparison.Ordinal))
        {
            converter = last.Converter;
            return last.Known;
        }
        bool known = _units.TryGetConverter(unit, metric, out converter);
        if (mapping is not null) mapping.LastConversion = new(_units, unit, known, converter);
        return known;
    }

    /// <summary>The series found last in this frame, and for which device and tags.</summary>
    private struct SeriesMemo
    {
        public RegisteredDevice? Device;
        public IReadOnlyList<KeyValuePair<string, string>>? Tags;
        public Series? Series;

        public Series? Remember(RegisteredDevice device, IReadOnlyList<KeyValuePair<string, string>>? tags, Series? series)
        {
            Device = device;
            Tags = tags;
            return Series = series;
        }
    }

    /// <summary>The device's series for these extra tags, built on first use; null (with the offending tag) when a tag value cannot be stored.</summary>
    private static Series? SeriesOf(RegisteredDevice device, IReadOnlyList<KeyValuePair<string, string>>? extraTags, out string? badTag)
    {
        badTag = null;
        var cache = device.Series ?? Interlocked.CompareExchange(ref device.Series, new DeviceSeries(), null) ?? device.Series;
        var key = extraTags as KeyValuePair<string, string>[] ?? extraTags?.ToArray();
        if (cache.TryGet(key, out var series)) return series;
        var tags = new List<KeyValuePair<string, string>>(6)
        {
            new("city", device.City),
            new("device", device.Id),
        };
        if (device.District.Length > 0) tags.Add(new("district", device.District));
        if (device.Site.Length > 0) tags.Add(new("site", device.Site));
        if (key is not null)
        {
            foreach (var t in key)
            {
                if (t.Value.Length == 0) continue;
                if (t.Value.Length > MaxTagLength || t.Value.AsSpan().ContainsAnyInRange('\0', '\u001f') || t.Value.AsSpan().ContainsAnyInRange('\u007f', '\u009f'))
                {
                    badTag = t.Key;
                    return null;
                }
                tags.Add(t);
            }
        }
        return cache.Add(key, new Series(device.Domain, tags.ToArray()));
    }

    /// <summary>A point for <paramref name="series"/>: a recycled one when there is one.</summary>
    private Point Rent(Series series, long ts, string origin)
    {
        if (t_free is { } free && free.TryPop(out var p))
        {
            p.Reset(series, ts, origin);
            return p;
        }
        return new Point(series, ts) { Origin = origin };
    }

    /// <summary>
    /// Takes back the points of <see cref="Normalise"/> once they are encoded, for reuse by later
    /// frames on this thread. The caller must not touch them afterwards.
    /// </summary>
    public void Recycle(List<Point> points)
    {
        var free = t_free ??= new Stack<Point>();
        foreach (var p in points)
            if (p.Series is not null && free.Count < MaxFreePoints) free.Push(p);
        points.Clear();
    }

    /// <summary>A custom field's value; <paramref name="number"/> is the reading's number in the field's unit.</summary>
    private static bool TryCustom(in Reading r, double number, ResolvedField mapping, out PointField field, out string error)
    {
        error = "";
        field = default;
        switch (mapping.CustomType)
        {
            case "integer" when r.Kind == ReadingKind.Number && number == Math.Floor(number) && Math.Abs(number) < 9.2e18:
                field = PointField.Of(mapping.FieldName, (long)number);
                return true;
            case "float" when r.Kind == ReadingKind.Number:
                field = PointField.Of(mapping.FieldName, number);
                return true;
            case "boolean" when r.Kind == ReadingKind.Boolean:
                field = PointField.Of(mapping.FieldName, r.Boolean);
                return true;
            case "string" when r.Kind == ReadingKind.Text:
                field = PointField.Of(mapping.FieldName, r.Text!.Length > 1024 ? r.Text[..1024] : r.Text);
                return true;
            default:
                error = $"'{r.Field}' must be {mapping.CustomType}, got {Describe(r)}";
                return false;
        }
    }

    private static string Describe(in Reading r) => r.Kind switch
    {
        ReadingKind.Number => r.Number.ToString("G6", System.Globalization.CultureInfo.InvariantCulture),
        ReadingKind.Boolean => r.Boolean ? "true" : "false",
        ReadingKind.Text => $"string \"{Timestamps.Truncate(r.Text ?? "", 32)}\"",
        _ => "an invalid value",
    };

    private static string FormatSkew(long ns)
    {
        var span = TimeSpan.FromTicks(Math.Abs(ns) / 100);
        return (ns >= 0 ? "+" : "-") + (span.TotalDays >= 1 ? $"{span.TotalDays:F1} days" : span.ToString(@"hh\:mm\:ss"));
    }
}
