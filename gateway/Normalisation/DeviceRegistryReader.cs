using System.Buffers;
using System.Text;
using System.Text.Json;
using CityGateway.Core;

namespace CityGateway.Normalisation;

/// <summary>
/// Reads a registry file as a stream: device types into <see cref="DeviceTypeEntry"/> objects (a
/// few), and each device straight into the registry being built, so the file is never held whole
/// and no second copy of 100,000 device entries exists next to the registry. The strings that
/// repeat from device to device (type, city, district, site) are read once and shared. Mistakes of
/// shape (a number where a name belongs, an entry that is not an object) are listed with the
/// registry's other errors; only broken JSON stops the reading.
/// </summary>
internal static class DeviceRegistryReader
{
    private static readonly JsonReaderOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>The registry, or null when the file holds JSON null. Throws <see cref="JsonException"/>
    /// for broken JSON and <see cref="RegistryException"/> listing every error of content. The strings
    /// read are interned in <paramref name="strings"/>, which the files of one registry share.</summary>
    public static DeviceRegistry? Read(Stream stream, string source, MetricCatalog catalog, UnitTable units, RegistryInterner strings)
    {
        using var json = new JsonTokenStream(stream, Options);
        json.Read();
        if (json.TokenType == JsonTokenType.Null) return null;
        if (json.TokenType != JsonTokenType.StartObject)
            throw new JsonException($"the registry must be a JSON object, not {Describe(json.TokenType)}");

        var errors = new List<string>();
        string? city = null;
        bool citySeen = false;
        DeviceRegistry.Builder? builder = null;
        // Devices met before the device types, or before the file's city when they need it, wait here.
        List<(string Id, DeviceEntry Entry)>? waiting = null;
        var entry = new DeviceEntry();
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("city"u8))
            {
                json.Read();
                if (ReadString(json, strings, "city", null, errors, out city)) citySeen = true;
            }
            else if (json.NameIs("deviceTypes"u8))
            {
                json.Read();
                if (builder is not null)
                {
                    errors.Add("deviceTypes: given more than once");
                    json.Skip();
                    continue;
                }
                builder = new DeviceRegistry.Builder(ReadTypes(json, strings, errors), strings, errors, catalog, units);
            }
            else if (json.NameIs("devices"u8))
            {
                json.Read();
                if (!StartObject(json, "devices", errors)) continue;
                while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
                {
                    var id = json.GetString();
                    json.Read();
                    if (!ReadDevice(json, id, strings, errors, entry)) continue;
                    if (builder is not null && (entry.City is not null || citySeen))
                    {
                        builder.DefaultCity = city;
                        builder.Add(id, entry);
                    }
                    else
                    {
                        (waiting ??= []).Add((id, entry));
                        entry = new DeviceEntry();
                    }
                }
            }
            else
            {
                json.Read();
                json.Skip();
            }
        }
        if (json.Read()) throw new JsonException("unexpected content after the registry object");

        builder ??= new DeviceRegistry.Builder(new Dictionary<string, DeviceTypeEntry>(), strings, errors, catalog, units);
        builder.DefaultCity = city;
        if (waiting is not null)
            foreach (var (id, d) in waiting) builder.Add(id, d);
        return builder.Finish(source);
    }

    private static Dictionary<string, DeviceTypeEntry> ReadTypes(JsonTokenStream json, RegistryInterner strings, List<string> errors)
    {
        var types = new Dictionary<string, DeviceTypeEntry>(StringComparer.Ordinal);
        if (!StartObject(json, "deviceTypes", errors)) return types;
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            var name = json.GetString(strings);
            var key = $"deviceTypes.{name}";
            json.Read();
            if (!StartObject(json, key, errors)) continue;
            var type = new DeviceTypeEntry();
            while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.NameIs("domain"u8))
                {
                    json.Read();
                    if (ReadString(json, strings, key, "domain", errors, out var domain)) type.Domain = domain!;
                }
                else if (json.NameIs("fields"u8))
                {
                    json.Read();
                    if (!StartObject(json, key + ".fields", errors)) continue;
                    while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
                    {
                        var source = json.GetString(strings);
                        json.Read();
                        if (ReadField(json, $"{key}.fields.{source}", strings, errors) is { } field) type.Fields[source] = field;
                    }
                }
                else if (json.NameIs("ignore"u8))
                {
                    json.Read();
                    if (json.TokenType == JsonTokenType.Null) continue;
                    if (json.TokenType != JsonTokenType.StartArray)
                    {
                        errors.Add($"{key}.ignore: must be a list of field names, not {Describe(json.TokenType)}");
                        json.Skip();
                        continue;
                    }
                    while (json.Read() && json.TokenType != JsonTokenType.EndArray)
                        if (ReadString(json, strings, key, "ignore", errors, out var ignored) && ignored is not null) type.Ignore.Add(ignored);
                }
                else
                {
                    json.Read();
                    json.Skip();
                }
            }
            types[name] = type;
        }
        return types;
    }

    private static FieldMapping? ReadField(JsonTokenStream json, string key, RegistryInterner strings, List<string> errors)
    {
        if (!StartObject(json, key, errors)) return null;
        var field = new FieldMapping();
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("metric"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "metric", errors, out var metric)) field.Metric = metric!;
            }
            else if (json.NameIs("unit"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "unit", errors, out var unit)) field.Unit = unit;
            }
            else if (json.NameIs("type"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "type", errors, out var type)) field.Type = type;
            }
            else if (json.NameIs("custom"u8))
            {
                json.Read();
                if (json.TokenType is JsonTokenType.True or JsonTokenType.False) field.Custom = json.TokenType == JsonTokenType.True;
                else
                {
                    errors.Add($"{key}.custom: must be true or false, not {Describe(json.TokenType)}");
                    json.Skip();
                }
            }
            else
            {
                json.Read();
                json.Skip();
            }
        }
        return field;
    }

    /// <summary>Reads one device into <paramref name="d"/> (every property reset first); false when
    /// the entry is not an object at all.</summary>
    private static bool ReadDevice(JsonTokenStream json, string id, RegistryInterner strings, List<string> errors, DeviceEntry d)
    {
        var key = DeviceKey(id);
        if (!StartObject(json, key, null, errors)) return false;
        d.Type = "";
        d.City = null;
        d.District = "";
        d.Site = "";
        d.Latitude = null;
        d.Longitude = null;
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.NameIs("type"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "type", errors, out var type)) d.Type = type!;
            }
            else if (json.NameIs("district"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "district", errors, out var district)) d.District = district!;
            }
            else if (json.NameIs("site"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "site", errors, out var site)) d.Site = site!;
            }
            else if (json.NameIs("city"u8))
            {
                json.Read();
                if (ReadString(json, strings, key, "city", errors, out var city)) d.City = city;
            }
            else if (json.NameIs("lat"u8))
            {
                json.Read();
                if (ReadNumber(json, key, "lat", errors, out var lat)) d.Latitude = lat;
            }
            else if (json.NameIs("lon"u8))
            {
                json.Read();
                if (ReadNumber(json, key, "lon", errors, out var lon)) d.Longitude = lon;
            }
            else
            {
                json.Read();
                json.Skip();
            }
        }
        return true;
    }

    /// <summary>At the start of a value that must be an object: true at '{'; otherwise the error is
    /// listed (JSON null included: an entry must say something) and the value skipped.</summary>
    private static bool StartObject(JsonTokenStream json, string key, List<string> errors) => StartObject(json, key, null, errors);

    private static bool StartObject(JsonTokenStream json, Key key, string? property, List<string> errors)
    {
        if (json.TokenType == JsonTokenType.StartObject) return true;
        errors.Add($"{Name(key, property)}: must be an object, not {Describe(json.TokenType)}");
        json.Skip();
        return false;
    }

    /// <summary>A string (shared with equal ones read before) or null; anything else is listed and skipped.</summary>
    /// <remarks>An error names the entry as <paramref name="key"/>.<paramref name="property"/>, put together
    /// only then: a device's properties are read 600,000 times in a registry of 100,000.</remarks>
    private static bool ReadString(JsonTokenStream json, RegistryInterner strings, Key key, string? property, List<string> errors, out string? value)
    {
        value = null;
        if (json.TokenType == JsonTokenType.Null) return true;
        if (json.TokenType == JsonTokenType.String)
        {
            value = json.GetString(strings);
            return true;
        }
        errors.Add($"{Name(key, property)}: must be a string, not {Describe(json.TokenType)}");
        json.Skip();
        return false;
    }

    private static bool ReadNumber(JsonTokenStream json, Key key, string property, List<string> errors, out double? value)
    {
        value = null;
        if (json.TokenType == JsonTokenType.Null) return true;
        if (json.TokenType == JsonTokenType.Number && json.TryGetDouble(out var v))
        {
            value = v;
            return true;
        }
        errors.Add(json.TokenType == JsonTokenType.Number
            ? $"{Name(key, property)}: the number is out of range"
            : $"{Name(key, property)}: must be a number, not {Describe(json.TokenType)}");
        json.Skip();
        return false;
    }

    private static string Name(Key key, string? property) => property is null ? key.ToString() : key + "." + property;

    /// <summary>Where an entry is, for error messages: a path, or a device id under "devices".</summary>
    private readonly record struct Key(string Path, bool IsDevice = false)
    {
        public static implicit operator Key(string path) => new(path);

        public override string ToString() => IsDevice ? "devices." + Path : Path;
    }

    private static Key DeviceKey(string id) => new(id, IsDevice: true);

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "a list",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}

/// <summary>
/// JSON tokens from a stream, read through a buffer of 64 KiB (larger only for a token that does
/// not fit). The current token's value can be read until the next <see cref="Read"/>.
/// </summary>
internal sealed class JsonTokenStream : IDisposable
{
    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start, _end;           // bytes read from the stream and not yet consumed
    private bool _final;
    private JsonReaderState _state;
    private int _valueStart, _valueLength; // the current string, property name or number, raw, in _buffer
    private string? _unescaped;            // the current string when it had escapes
    private double _number;
    private bool _numberValid;

    public JsonTokenStream(Stream stream, JsonReaderOptions options)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        _state = new JsonReaderState(options);
        while (_end < 3 && !_final) Fill();
        // A UTF-8 byte order mark (editors on Windows write one) is not JSON; skip it as the serializer does.
        if (_end >= 3 && _buffer[0] == 0xEF && _buffer[1] == 0xBB && _buffer[2] == 0xBF) _start = 3;
    }

    public JsonTokenType TokenType { get; private set; } = JsonTokenType.None;

    /// <summary>Depth of the current token; a container's start and end tokens have the same depth.</summary>
    public int Depth { get; private set; }

    /// <summary>Moves to the next token; false at the end of the input. Throws <see cref="JsonException"/> on broken JSON.</summary>
    public bool Read()
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            if (reader.Read())
            {
                TokenType = reader.TokenType;
                Depth = reader.CurrentDepth;
                _unescaped = null;
                if (TokenType is JsonTokenType.String or JsonTokenType.PropertyName)
                {
                    if (reader.ValueIsEscaped) _unescaped = reader.GetString();
                    _valueStart = _start + (int)reader.TokenStartIndex + 1; // after the opening quote
                    _valueLength = reader.ValueSpan.Length;
                }
                else if (TokenType == JsonTokenType.Number)
                {
                    _numberValid = reader.TryGetDouble(out _number);
                }
                _start += (int)reader.BytesConsumed;
                _state = reader.CurrentState;
                return true;
            }
            if (_final)
            {
                TokenType = JsonTokenType.None;
                return false;
            }
            _start += (int)reader.BytesConsumed;
            _state = reader.CurrentState;
            Fill();
        }
    }

    /// <summary>Skips the value that starts at the current token (a whole object or list).</summary>
    public void Skip()
    {
        if (TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
        int depth = Depth;
        while (Read() && !(Depth == depth && TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray)) { }
    }

    public string GetString() => _unescaped ?? Encoding.UTF8.GetString(_buffer, _valueStart, _valueLength);

    /// <summary>The current string, the same instance as an equal one read before.</summary>
    public string GetString(RegistryInterner strings) =>
        _unescaped is { } s ? strings.Intern(s) : strings.Intern(_buffer.AsSpan(_valueStart, _valueLength));

    public bool NameIs(ReadOnlySpan<byte> utf8Name) =>
        _unescaped is { } s ? s == Encoding.UTF8.GetString(utf8Name) : _buffer.AsSpan(_valueStart, _valueLength).SequenceEqual(utf8Name);

    public bool TryGetDouble(out double value)
    {
        value = _number;
        return TokenType == JsonTokenType.Number && _numberValid;
    }

    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            // One token larger than the buffer: make room for it.
            var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            Buffer.BlockCopy(_buffer, 0, larger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
        int n = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (n == 0) _final = true;
        else _end += n;
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}

/// <summary>
/// One instance per distinct string: the thousands of devices at one site share its name. One per
/// registry load, unbounded and garbage after it; not the decoders' <see cref="Decoding.StringPool"/>,
/// which is bounded, lives for the process and keeps each entry's bytes as well (memory that the
/// loading of a 100,000-device registry, the gateway's peak, cannot spare).
/// </summary>
internal sealed class RegistryInterner
{
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _byChars;

    public RegistryInterner()
    {
        _byChars = _strings.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public string Intern(string value)
    {
        if (_strings.TryGetValue(value, out var pooled)) return pooled;
        _strings.Add(value, value);
        return value;
    }

    public string Intern(ReadOnlySpan<byte> utf8)
    {
        char[]? rented = null;
        Span<char> chars = utf8.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(utf8.Length));
        var text = chars[..Encoding.UTF8.GetChars(utf8, chars)];
        if (!_byChars.TryGetValue(text, out var pooled))
        {
            pooled = text.ToString();
            _strings.Add(pooled, pooled);
        }
        if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        return pooled;
    }
}
