using System.Globalization;
using System.Text;
using CityGateway.Decoding.Serial;
using CityGateway.Routing;

namespace CityGateway.Simulators;

/// <summary>
/// Produces the lines of a serial run in order: devices take turns (round robin), and the seeded
/// noise stream decides which lines are damaged and how. Intact lines may be planned as split writes.
/// Everything but the csv timestamps (and the values, unless a curve time is fixed) depends on the seed.
/// </summary>
internal sealed class SerialLineSource
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private static readonly string[] DeviceCorruptions = [SerialCorruption.BadChecksum, SerialCorruption.GarbageInside, SerialCorruption.Truncated];

    private readonly SerialSimulatorOptions _o;
    private readonly string _format;
    private readonly byte[] _ending;
    private readonly Random _noise;
    private readonly Random _split;
    private int _cursor;
    private bool _lastIntact;
    private bool _forceIntact;

    public SerialLineSource(SerialSimulatorOptions o)
    {
        _o = o;
        _format = o.NormalisedFormat();
        _ending = Encoding.ASCII.GetBytes(o.LineEnding);
        Devices = SerialDevice.CreateAll(o);
        int domain = SerialDeviceTypes.SeedDomain(_format);
        _noise = new Random(Identifiers.DeviceSeed(o.Seed, domain, 0, 5));
        _split = new Random(Identifiers.DeviceSeed(o.Seed, domain, 0, 6));
    }

    public IReadOnlyList<SerialDevice> Devices { get; }

    public string Format => _format;

    /// <summary>True when every device has taken <see cref="SerialSimulatorOptions.MessagesPerDevice"/> readings.
    /// Devices take turns, so the device due next is the one with the fewest.</summary>
    public bool Finished => _o.MessagesPerDevice is { } limit && Devices[_cursor].Sequence >= limit;

    /// <summary>The next line, taking a reading at wall time <paramref name="nowMs"/> when it carries one;
    /// null when <see cref="Finished"/>.</summary>
    public SerialLine? Next(long nowMs)
    {
        if (Finished) return null;

        string? kind = null;
        if (_o.Noise > 0)
        {
            double r = _noise.NextDouble();
            if (!_forceIntact && r < _o.Noise)
            {
                kind = SerialCorruption.All[_noise.Next(SerialCorruption.All.Count)];
                // A garbage line stands alone between two intact lines.
                if (kind == SerialCorruption.GarbageLine && !_lastIntact) kind = DeviceCorruptions[_noise.Next(DeviceCorruptions.Length)];
            }
        }
        _forceIntact = false;

        if (kind == SerialCorruption.GarbageLine)
        {
            _lastIntact = false;
            _forceIntact = true;
            return new SerialLine { Format = _format, Text = Concat(GarbageLine(), _ending), Corruption = kind };
        }

        var device = Devices[_cursor];
        _cursor = (_cursor + 1) % Devices.Count;
        var (seq, tsMs, values) = device.Next(nowMs, _o.CurveTime);
        string data = FormatLine(device, seq, tsMs, values);
        _lastIntact = kind is null;

        if (kind is null)
        {
            var text = Concat(Encoding.ASCII.GetBytes(_o.Checksum ? LineChecksum.Append(data) : data), _ending);
            var fields = device.Type.Fields;
            var sourceValues = new Dictionary<string, double>(fields.Count + 1);
            for (int i = 0; i < fields.Count; i++) sourceValues[fields[i].Name] = values[i];
            sourceValues[DeviceTypes.SequenceField] = seq;
            var (splitAt, pauses) = PlanSplit(text.Length);
            return new SerialLine
            {
                Device = device.Id,
                DeviceType = device.Type.Name,
                Domain = device.Domain,
                Format = _format,
                Text = text,
                Intact = true,
                Sequence = seq,
                SourceValues = sourceValues,
                TimestampNs = _format == "csv" ? tsMs * 1_000_000 : null,
                SplitAt = splitAt,
                PausesMs = pauses,
            };
        }

        var bytes = Encoding.ASCII.GetBytes(data);
        byte[] damaged = kind switch
        {
            SerialCorruption.BadChecksum => BadChecksum(bytes),
            SerialCorruption.GarbageInside => GarbageInside(bytes),
            SerialCorruption.Truncated => Truncated(bytes),
            _ => throw new InvalidOperationException(kind),
        };
        return new SerialLine
        {
            Device = device.Id,
            DeviceType = device.Type.Name,
            Domain = device.Domain,
            Format = _format,
            Text = Concat(damaged, _ending),
            Corruption = kind,
        };
    }

    /// <summary>The line without checksum and line ending.</summary>
    private string FormatLine(SerialDevice device, long seq, long tsMs, double[] values)
    {
        var fields = device.Type.Fields;
        var sb = new StringBuilder(112);
        switch (_format)
        {
            case "kv":
                sb.Append("dev=").Append(device.Id);
                for (int i = 0; i < fields.Count; i++)
                    sb.Append(' ').Append(fields[i].Name).Append('=').Append(Number(values[i], fields[i].Decimals));
                sb.Append(" seq=").Append(seq.ToString(C));
                break;
            case "csv":
                sb.Append(device.Id).Append(',').Append(tsMs.ToString(C));
                for (int i = 0; i < fields.Count; i++) sb.Append(',').Append(Number(values[i], fields[i].Decimals));
                sb.Append(',').Append(seq.ToString(C));
                break;
            case "jsonl":
                sb.Append("{\"device\":\"").Append(device.Id).Append('"');
                for (int i = 0; i < fields.Count; i++)
                    sb.Append(",\"").Append(fields[i].Name).Append("\":").Append(Number(values[i], fields[i].Decimals));
                sb.Append(",\"seq\":").Append(seq.ToString(C)).Append('}');
                break;
            default:
                throw new InvalidOperationException($"unknown serial format '{_format}'");
        }
        return sb.ToString();
    }

    /// <summary>Fixed decimals, as instruments print them (55.0, 0.80).</summary>
    private static string Number(double v, int decimals) => v.ToString("F" + decimals.ToString(C), C);

    private byte[] BadChecksum(byte[] data)
    {
        byte sum = LineChecksum.Compute(data);
        byte wrong = (byte)(sum ^ _noise.Next(1, 256));
        return Concat(data, Encoding.ASCII.GetBytes("*" + wrong.ToString("X2", C)));
    }

    private byte[] GarbageInside(byte[] data)
    {
        var suffix = Encoding.ASCII.GetBytes("*" + LineChecksum.Compute(data).ToString("X2", C));
        while (true)
        {
            var garbage = RandomBytes(_noise.Next(1, 9), allowStar: false);
            int at = _noise.Next(0, data.Length + 1);
            var line = Concat(data.AsSpan(0, at).ToArray(), garbage, data.AsSpan(at).ToArray(), suffix);
            if (Detectable(line)) return line;
        }
    }

    private byte[] GarbageLine()
    {
        while (true)
        {
            var line = RandomBytes(_noise.Next(3, 49), allowStar: true);
            if (Detectable(line)) return line;
        }
    }

    private byte[] Truncated(byte[] data)
    {
        // The data part holds no '*', so the cut line has no checksum at all.
        while (true)
        {
            var line = data.AsSpan(0, _noise.Next(1, data.Length)).ToArray();
            if (Detectable(line)) return line;
        }
    }

    /// <summary>Random bytes, never CR or LF; '*' only when <paramref name="allowStar"/>.</summary>
    private byte[] RandomBytes(int count, bool allowStar)
    {
        var bytes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            byte b;
            do b = (byte)_noise.Next(256);
            while (b is (byte)'\n' or (byte)'\r' || (!allowStar && b == (byte)'*'));
            bytes[i] = b;
        }
        return bytes;
    }

    /// <summary>
    /// True when a reader that requires checksums rejects the line, also if it trims blanks and NULs
    /// from the ends or drops NUL bytes first, and the line does not shrink to nothing that way.
    /// </summary>
    internal static bool Detectable(ReadOnlySpan<byte> line)
    {
        var trimmed = Trim(line);
        var withoutNul = Trim(line.ToArray().Where(b => b != 0).ToArray());
        foreach (var variant in new[] { line.ToArray(), trimmed.ToArray(), withoutNul.ToArray() })
        {
            if (variant.Length == 0) return false;
            if (LineChecksum.Verify(variant, ChecksumPolicy.Required, out _) is null) return false;
        }
        return true;

        static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s)
        {
            static bool Blank(byte b) => b is 0 or (byte)' ' or (byte)'\t' or 0x0B or 0x0C;
            int start = 0, end = s.Length;
            while (start < end && Blank(s[start])) start++;
            while (end > start && Blank(s[end - 1])) end--;
            return s[start..end];
        }
    }

    /// <summary>Decides whether an intact line is split, where, and the pauses between the pieces.</summary>
    private (int[] SplitAt, int[] PausesMs) PlanSplit(int length)
    {
        if (_o.SplitWrites <= 0 || length < 4 || _split.NextDouble() >= _o.SplitWrites) return ([], []);
        int pieces = _split.Next(2, 5);
        var cuts = new SortedSet<int>();
        while (cuts.Count < pieces - 1) cuts.Add(_split.Next(1, length));
        var pauses = new int[pieces - 1];
        for (int i = 0; i < pauses.Length; i++) pauses[i] = _split.Next(1, 6);
        return (cuts.ToArray(), pauses);
    }

    private static byte[] Concat(params byte[][] parts)
    {
        var result = new byte[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(result, at);
            at += p.Length;
        }
        return result;
    }
}
