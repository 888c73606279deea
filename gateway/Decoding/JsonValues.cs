using System.Text.Json;
using CityGateway.Core;

namespace CityGateway.Decoding;

/// <summary>Reading JSON values into <see cref="Reading"/>s, shared by the JSON-based decoders.</summary>
public static class JsonValues
{
    public static readonly JsonReaderOptions ReaderOptions = new()
    {
        MaxDepth = 32,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    /// <summary>
    /// Reads the value at the reader's position as field <paramref name="name"/>. Nested objects are
    /// flattened with '.' (sensor.temperature); arrays are reported as unsupported; null means "no
    /// reading" and is skipped. The device id is filled in later by the caller.
    /// </summary>
    public static void ReadField(ref Utf8JsonReader reader, string name, List<Reading> readings, StringPool names)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                if (reader.TryGetDouble(out var d) && double.IsFinite(d))
                    readings.Add(new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Number, Number = d });
                else
                    readings.Add(Reading.Invalid("", name, QuarantineReasons.NonFinite,
                        $"'{name}' = {Timestamps.Truncate(System.Text.Encoding.UTF8.GetString(reader.ValueSpan))} is not a finite number"));
                break;
            case JsonTokenType.True:
            case JsonTokenType.False:
                readings.Add(new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Boolean, Boolean = reader.TokenType == JsonTokenType.True });
                break;
            case JsonTokenType.String:
                readings.Add(new Reading { DeviceId = "", Field = name, Kind = ReadingKind.Text, Text = reader.GetString() });
                break;
            case JsonTokenType.Null:
                break;
            case JsonTokenType.StartObject:
                ReadObject(ref reader, name + ".", readings, names);
                break;
            case JsonTokenType.StartArray:
                reader.Skip();
                readings.Add(Reading.Invalid("", name, QuarantineReasons.Unsupported, $"'{name}' is an array; arrays are not supported"));
                break;
            default:
                throw new JsonException($"unexpected token {reader.TokenType}");
        }
    }

    /// <summary>Reads every property of the object the reader is positioned on (StartObject).</summary>
    public static void ReadObject(ref Utf8JsonReader reader, string prefix, List<Reading> readings, StringPool names)
    {
        int start = readings.Count;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = prefix.Length == 0 ? names.Get(ref reader) : prefix + reader.GetString();
            reader.Read();
            RejectDuplicate(readings, start, name);
            ReadField(ref reader, name, readings, names);
        }
    }

    /// <summary>A key that appears twice in one object is ambiguous: reject the payload.</summary>
    public static void RejectDuplicate(List<Reading> readings, int start, string name)
    {
        for (int i = start; i < readings.Count; i++)
            if (readings[i].Field == name) throw new JsonException($"duplicate key '{name}'");
    }

    /// <summary>Reads a string or number value as text (device ids, tags); these repeat, so they come from the pool.</summary>
    public static string? ReadScalarText(ref Utf8JsonReader reader, StringPool names) => reader.TokenType switch
    {
        JsonTokenType.String => names.Get(ref reader),
        JsonTokenType.Number => names.Get(reader.ValueSpan),
        JsonTokenType.Null => null,
        _ => throw new JsonException($"expected a string or a number, found {reader.TokenType}"),
    };

    /// <summary>Fills in device, time and tags on the readings appended since <paramref name="start"/>.</summary>
    public static void Complete(List<Reading> readings, int start, string device, long? timestampNs,
        IReadOnlyList<KeyValuePair<string, string>>? tags)
    {
        for (int i = start; i < readings.Count; i++)
        {
            var r = readings[i];
            readings[i] = r with { DeviceId = device, TimestampNs = r.TimestampNs ?? timestampNs, Tags = tags };
        }
    }

    /// <summary>After the top-level value, only whitespace may follow.</summary>
    public static void ExpectEnd(ref Utf8JsonReader reader)
    {
        if (reader.Read()) throw new JsonException("unexpected content after the JSON value");
    }
}
