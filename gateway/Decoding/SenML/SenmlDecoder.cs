using System.Text.Json;
using CityGateway.Core;

namespace CityGateway.Decoding.SenML;

/// <summary>
/// SenML JSON (RFC 8428): an array of records. Base fields (bn, bt, bu, bv, bs) apply to the record
/// that carries them and every later one until redefined; name = bn + n, time = bt + t, value = bv + v.
/// A resolved time below 2^28 is relative to now (the receive time). The device is the base name
/// without its trailing separator; for urn:dev: names, the last segment (urn:dev:ow:10e2073a01080063
/// gives 10e2073a01080063). Without a base name, the route's {device} topic level names the device.
/// A resolved name that is exactly a device URN, urn:dev:&lt;type&gt;:&lt;id&gt; (optionally with a trailing
/// separator), names only the device: the device is &lt;id&gt; and the record's unit (u, else bu) names the
/// field, as in RFC 8428's [{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}] (device
/// 10e2073a01080063, field Cel). Such a record without a unit has no field name and is malformed.
/// </summary>
public sealed class SenmlDecoder : IPayloadDecoder
{
    private const double RelativeTimeLimit = 268_435_456; // 2^28 seconds

    public string Format => "senml";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        int start = readings.Count;
        try
        {
            var reader = new Utf8JsonReader(payload, JsonValues.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                return new DecodeError(QuarantineReasons.MalformedPayload, "a SenML pack must be a JSON array of records");
            string bn = "";
            double bt = 0, bv = 0, bs = 0;
            string? bu = null;
            string? topicDevice = null;
            int index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                    return Fail(readings, start, $"record {index} is not a JSON object");
                var rec = new Record();
                var seen = new SeenNames();
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var key = context.Names.Get(ref reader);
                    reader.Read();
                    if (!seen.Add(key)) return Fail(readings, start, $"record {index} has key '{key}' twice");
                    switch (key)
                    {
                        case "bn": rec.Bn = ExpectString(ref reader, key, context.Names); break;
                        case "bt": rec.Bt = ExpectNumber(ref reader, key); break;
                        case "bu": rec.Bu = ExpectString(ref reader, key, context.Names); break;
                        case "bv": rec.Bv = ExpectNumber(ref reader, key); break;
                        case "bs": rec.Bs = ExpectNumber(ref reader, key); break;
                        case "bver":
                            // RFC 8428 §4.4: a pack of a newer version than we understand (10) must not be used.
                            if (ExpectNumber(ref reader, key) > 10) return Fail(readings, start, $"record {index}: SenML version (bver) above 10 is not supported");
                            break;
                        case "n": rec.N = ExpectString(ref reader, key, context.Names); break;
                        case "u": rec.U = ExpectString(ref reader, key, context.Names); break;
                        case "t": rec.T = ExpectNumber(ref reader, key); break;
                        case "ut": ExpectNumber(ref reader, key); break;
                        case "s": rec.S = ExpectNumber(ref reader, key); break;
                        case "v":
                            rec.ValueKeys++;
                            if (reader.TokenType != JsonTokenType.Number) throw new JsonException($"'v' must be a number in record {index}");
                            if (reader.TryGetDouble(out var v) && double.IsFinite(v)) rec.V = v; else rec.VNonFinite = true;
                            break;
                        case "vs": rec.ValueKeys++; rec.Vs = ExpectString(ref reader, key, context.Names); break;
                        case "vb":
                            rec.ValueKeys++;
                            if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                                throw new JsonException($"'vb' must be true or false in record {index}");
                            rec.Vb = reader.TokenType == JsonTokenType.True;
                            break;
                        case "vd": rec.ValueKeys++; ExpectString(ref reader, key, context.Names); rec.Vd = true; break;
                        default:
                            // RFC 8428 §4.4: a key ending in '_' must be understood; others may be ignored.
                            if (key.EndsWith('_')) return Fail(readings, start, $"record {index} has must-understand key '{key}'");
                            reader.Skip();
                            break;
                    }
                }
                if (rec.ValueKeys > 1) return Fail(readings, start, $"record {index} has more than one value field");

                if (rec.Bn is not null) bn = rec.Bn;
                if (rec.Bt is { } nbt) bt = nbt;
                if (rec.Bu is not null) bu = rec.Bu;
                if (rec.Bv is { } nbv) bv = nbv;
                if (rec.Bs is { } nbs) bs = nbs;

                bool hasValue = rec.ValueKeys > 0 || rec.S is not null;
                if (!hasValue) { index++; continue; } // a record that only sets base fields

                if (bn.Length + (rec.N?.Length ?? 0) == 0) return Fail(readings, start, $"record {index} has no name (neither bn nor n)");
                var unit = rec.U ?? bu;
                topicDevice ??= context.TopicDevice ?? "";
                var (device, field) = SplitName(bn, rec.N, unit, topicDevice.Length == 0 ? null : topicDevice, context.Names);
                if (device is null)
                    return Fail(readings, start, QuarantineReasons.MissingDeviceId,
                        $"record {index}: no device id (no base name and no {{device}} in the route's topic template)");
                if (topicDevice.Length > 0 && context.TopicDeviceConflict(device) is { } conflict)
                    return Fail(readings, start, conflict.Reason, $"record {index}: {conflict.Detail}");
                if (field.Length == 0)
                    return Fail(readings, start, $"record {index}: name '{Timestamps.Truncate(bn + rec.N)}' names no field (a device URN needs a unit)");

                double t = bt + (rec.T ?? 0);
                if (!double.IsFinite(t)) return Fail(readings, start, $"record {index} time is not finite");
                // Below 2^28 s the time is relative to now (usually <= 0).
                bool relative = t < RelativeTimeLimit;
                // SenML times are doubles in seconds: an epoch time carries about 0.2 µs of
                // floating-point noise, so times are kept to the microsecond (exact for ms times).
                double offsetUs = Math.Round(t * 1e6);
                double resolvedUs = relative ? context.ReceivedAtNs / 1000.0 + offsetUs : offsetUs;
                if (!(Math.Abs(offsetUs) < 9.2e15 && Math.Abs(resolvedUs) < 9.2e15))
                    return Fail(readings, start, QuarantineReasons.BadTimestamp, $"record {index} time {t} is out of range");
                // Whole microseconds times 1000 in integer arithmetic: a double cannot hold epoch nanoseconds exactly.
                long tsNs = relative ? context.ReceivedAtNs + (long)offsetUs * 1000 : (long)offsetUs * 1000;

                Reading reading;
                if (rec.VNonFinite)
                    reading = Reading.Invalid(device, field, QuarantineReasons.NonFinite, $"'{field}' is not a finite number", tsNs);
                else if (rec.V is { } value)
                {
                    double resolved = bv + value;
                    reading = double.IsFinite(resolved)
                        ? new Reading { DeviceId = device, Field = field, Kind = ReadingKind.Number, Number = resolved, Unit = unit, TimestampNs = tsNs }
                        : Reading.Invalid(device, field, QuarantineReasons.NonFinite, $"'{field}' base value plus value is not finite", tsNs);
                }
                else if (rec.Vs is not null)
                    reading = new Reading { DeviceId = device, Field = field, Kind = ReadingKind.Text, Text = rec.Vs, Unit = unit, TimestampNs = tsNs };
                else if (rec.Vb is { } b)
                    reading = new Reading { DeviceId = device, Field = field, Kind = ReadingKind.Boolean, Boolean = b, Unit = unit, TimestampNs = tsNs };
                else if (rec.Vd)
                    reading = Reading.Invalid(device, field, QuarantineReasons.Unsupported, $"'{field}' is a data value (vd); not supported", tsNs);
                else
                {
                    double sum = bs + rec.S!.Value;
                    reading = new Reading { DeviceId = device, Field = field, Kind = ReadingKind.Number, Number = sum, Unit = unit, TimestampNs = tsNs };
                }
                readings.Add(reading);
                index++;
            }
            JsonValues.ExpectEnd(ref reader);
            return null;
        }
        // Utf8JsonReader throws InvalidOperationException when a value is read as the wrong token type.
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail(readings, start, e.Message);
        }
    }

    /// <summary>Splits a SenML name into device and field (see the type's summary).</summary>
    public static (string? Device, string Field) SplitName(string bn, string? n, string? unit, string? topicDevice, StringPool names)
    {
        n ??= "";
        int length = bn.Length + n.Length;
        Span<char> joined = length <= 256 ? stackalloc char[length] : new char[length];
        bn.CopyTo(joined);
        n.CopyTo(joined[bn.Length..]);
        if (TryDeviceUrnId(joined.TrimEnd(NameSeparators), out var urnId)) return (names.Get(urnId), unit ?? "");
        ReadOnlySpan<char> device = topicDevice;
        bool hasDevice = topicDevice is not null;
        ReadOnlySpan<char> field = n;
        if (bn.Length > 0)
        {
            var baseName = bn.AsSpan().TrimEnd(NameSeparators);
            if (field.Length > 0)
            {
                device = baseName;
                hasDevice = true;
            }
            else
            {
                // The whole name is in bn: take its last segment as the field.
                int cut = baseName.LastIndexOfAny(':', '/');
                if (cut > 0)
                {
                    field = baseName[(cut + 1)..];
                    device = baseName[..cut];
                    hasDevice = true;
                }
                else
                {
                    field = baseName;
                }
            }
        }
        else
        {
            int cut = field.LastIndexOfAny(':', '/');
            if (!hasDevice && cut > 0)
            {
                device = field[..cut];
                field = field[(cut + 1)..];
                hasDevice = true;
            }
        }
        if (hasDevice && device.StartsWith("urn:dev:", StringComparison.OrdinalIgnoreCase))
            device = device[(device.LastIndexOf(':') + 1)..];
        return (!hasDevice || device.IsEmpty ? null : names.Get(device), names.Get(field));
    }

    private static readonly char[] NameSeparators = [':', '/', '.', '-', '_'];

    /// <summary>True when <paramref name="name"/> is exactly urn:dev:&lt;type&gt;:&lt;id&gt;; gives &lt;id&gt;.</summary>
    private static bool TryDeviceUrnId(ReadOnlySpan<char> name, out ReadOnlySpan<char> id)
    {
        id = default;
        if (!name.StartsWith("urn:dev:", StringComparison.OrdinalIgnoreCase)) return false;
        var rest = name[8..];
        int colon = rest.IndexOf(':');
        if (colon <= 0) return false;
        var tail = rest[(colon + 1)..];
        if (tail.Length == 0 || tail.IndexOfAny(':', '/') >= 0) return false;
        id = tail;
        return true;
    }

    private static DecodeError Fail(List<Reading> readings, int start, string detail) =>
        Fail(readings, start, QuarantineReasons.MalformedPayload, detail);

    private static DecodeError Fail(List<Reading> readings, int start, string reason, string detail)
    {
        readings.RemoveRange(start, readings.Count - start);
        return new DecodeError(reason, detail);
    }

    private static string ExpectString(ref Utf8JsonReader reader, string key, StringPool names) =>
        reader.TokenType == JsonTokenType.String ? names.Get(ref reader) : throw new JsonException($"'{key}' must be a string");

    private static double ExpectNumber(ref Utf8JsonReader reader, string key)
    {
        if (reader.TokenType != JsonTokenType.Number) throw new JsonException($"'{key}' must be a number");
        if (!reader.TryGetDouble(out var d) || !double.IsFinite(d)) throw new JsonException($"'{key}' is not a finite number");
        return d;
    }

    private struct Record
    {
        public string? Bn, Bu, N, U, Vs;
        public double? Bt, Bv, Bs, T, V, S;
        public bool? Vb;
        public bool Vd, VNonFinite;
        public int ValueKeys;
    }
}
