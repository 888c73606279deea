using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Simulators;

namespace CityGateway.Tests.Infrastructure;

/// <summary>
/// One malformed message of the hostile corpus: where it is published, its bytes, and the quarantine
/// reasons the gateway may give it. Every payload is built to produce exactly one quarantine entry and
/// no point. Its topic is unique (a "hostile-NNNNN" level), so the entry can be matched to it.
/// </summary>
public sealed record HostilePayload(int Id, string Category, string Case, string Format, string Topic, byte[] Payload,
    IReadOnlyList<string> Reasons)
{
    public override string ToString() => $"#{Id} {Category}/{Case} ({Format}, {Payload.Length} bytes) on {Topic[..Math.Min(Topic.Length, 120)]}";
}

/// <summary>
/// Generates malformed payloads for the four payload formats, deterministically from a seed: random
/// bytes, truncated messages, deep nesting, huge numbers, huge strings, wrong encodings, duplicated
/// keys, SenML base-field conflicts, uplinks with missing sections, invalid JSON literals, wrong
/// top-level types, unknown and missing devices, bad field values, bad timestamps and bad tags.
/// Valid messages of a simulated fleet (one or more per format) serve as templates, so the bad
/// payloads look like what real devices and network servers send, for devices in the registry.
/// </summary>
public static class HostileCorpus
{
    /// <summary>Gateway:Pipeline:MaxPayloadBytes as configured in appsettings.json.</summary>
    public const int MaxPayloadBytes = 262_144;

    public const string Malformed = "malformed_payload";
    public const string InvalidUtf8 = "invalid_utf8";
    public const string TooLarge = "payload_too_large";
    public const string MissingDevice = "missing_device_id";
    public const string MissingDecoded = "missing_decoded_payload";
    public const string UnknownDevice = "unknown_device";
    public const string DeviceMismatch = "device_mismatch";
    public const string UnknownField = "unknown_field";
    public const string WrongType = "wrong_type";
    public const string NonFinite = "non_finite";
    public const string OutOfBounds = "out_of_bounds";
    public const string Unsupported = "unsupported_value";
    public const string BadTimestamp = "bad_timestamp";
    public const string ClockSkew = "clock_skew";

    public static readonly IReadOnlyList<string> Formats = ["json", "senml", "chirpstack", "tts"];

    private static readonly string[] All = ["json", "senml", "chirpstack", "tts"];
    private static readonly string[] Lora = ["chirpstack", "tts"];
    private static readonly string[] Objects = ["json", "chirpstack", "tts"];

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// <paramref name="count"/> payloads (every case in turn, with random parameters, then shuffled).
    /// <paramref name="templates"/> must hold valid messages of every format for devices in the registry;
    /// <paramref name="now"/> is the time the corpus will be published around (for clock-skew cases).
    /// </summary>
    public static IReadOnlyList<HostilePayload> Generate(int seed, IReadOnlyList<PublishedMessage> templates, DateTimeOffset now, int count = 1280)
    {
        var byFormat = templates.GroupBy(t => t.Format).ToDictionary(g => g.Key, g => g.ToArray());
        foreach (var f in Formats)
            if (!byFormat.ContainsKey(f)) throw new ArgumentException($"no template message in format {f}");
        var rng = new Random(seed);
        var cases = Cases();
        var corpus = new List<HostilePayload>(count);
        for (int i = 0; i < count; i++)
        {
            var c = cases[i % cases.Count];
            var options = byFormat[c.Format];
            var ctx = new Ctx(rng, options[rng.Next(options.Length)], c.Format, i + 1, now);
            var (payload, reasons, topic) = c.Build(ctx);
            // The size limit is checked before anything else: only the payload_too_large cases may exceed it.
            if (payload.Length > MaxPayloadBytes != reasons.Contains(TooLarge))
                throw new InvalidOperationException($"{c.Category}/{c.Name} ({c.Format}) built {payload.Length} bytes, expecting {string.Join(", ", reasons)}");
            corpus.Add(new HostilePayload(ctx.Id, c.Category, c.Name, c.Format, topic ?? ctx.Topic, payload, reasons));
        }
        for (int i = corpus.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (corpus[i], corpus[j]) = (corpus[j], corpus[i]);
        }
        return corpus;
    }

    private sealed record Case(string Category, string Name, string Format, Func<Ctx, Built> Build);

    private readonly record struct Built(byte[] Payload, string[] Reasons, string? Topic = null)
    {
        public static implicit operator Built((string Text, string Reason) t) => new(Utf8(t.Text), [t.Reason]);
        public static implicit operator Built((byte[] Bytes, string Reason) t) => new(t.Bytes, [t.Reason]);
    }

    /// <summary>What a case builds from: the random source, a valid template message, the payload id.</summary>
    private sealed class Ctx(Random rng, PublishedMessage template, string format, int id, DateTimeOffset now)
    {
        public Random Rng { get; } = rng;
        public PublishedMessage T { get; } = template;
        public string Format { get; } = format;
        public int Id { get; } = id;
        public DateTimeOffset Now { get; } = now;
        public string Tag => $"hostile-{Id:D5}";
        public string Ghost => $"ghost-{Id:D5}";
        public long TsMs => T.TimestampNs / 1_000_000;

        /// <summary>The first measured field of the template's device type (mapped to a canonical metric).</summary>
        public string Field0 => DeviceTypes.All.First(t => t.Name == T.DeviceType).Fields[0].Name;

        /// <summary>A unique topic of the format's route, naming the template's (registered) device as
        /// its payload does: the plain id for JSON and SenML, the id the network server puts in its
        /// topics (DevEUI, device id) for LoRaWAN.</summary>
        public string Topic => Format switch
        {
            "json" => $"city/json/{T.Domain}/{T.DeviceName}/{Tag}",
            "senml" => $"city/senml/{T.Domain}/{T.DeviceName}/{Tag}",
            "chirpstack" => $"application/{Tag}/device/{T.Device}/event/up",
            _ => $"v3/{Tag}@ttn/devices/{T.Device}/up",
        };

        /// <summary>A unique topic of the format's route naming a device that is not the template's (nor registered).</summary>
        public string TopicOfAnotherDevice => Format switch
        {
            "json" => $"city/json/{T.Domain}/{Ghost}/{Tag}",
            "senml" => $"city/senml/{T.Domain}/{Ghost}/{Tag}",
            "chirpstack" => $"application/{Tag}/device/ffff{Id:x12}/event/up",
            _ => $"v3/{Tag}@ttn/devices/{Ghost}/up",
        };

        /// <summary>A unique topic of the format's route without a device level (or with an empty one).</summary>
        public string TopicWithoutDevice => Format switch
        {
            "json" => $"city/json/{Tag}",
            "senml" => $"city/senml/{Tag}",
            "chirpstack" => $"application/{Tag}/device//event/up",
            _ => $"v3/{Tag}@ttn/devices//up",
        };

        public string Pick(params string[] options) => options[Rng.Next(options.Length)];

        public string Letters(int length)
        {
            var sb = new StringBuilder(length);
            for (int i = 0; i < length; i++) sb.Append((char)('a' + Rng.Next(26)));
            return sb.ToString();
        }
    }

    private static List<Case> Cases()
    {
        var list = new List<Case>();
        void Add(string category, string name, string[] formats, Func<Ctx, Built> build)
        {
            foreach (var f in formats) list.Add(new Case(category, name, f, build));
        }
        // Cases published on a topic without a device level (or with an empty one).
        void AddOn(string category, string name, string[] formats, Func<Ctx, Built> build, Func<Ctx, string> topic) =>
            Add(category, name, formats, c => build(c) with { Topic = topic(c) });

        // ---- random bytes ----
        Add("random_bytes", "binary", All, c =>
        {
            var b = new byte[c.Rng.Next(8, 4097)];
            c.Rng.NextBytes(b);
            return new Built(b, [ByValidity(b)]);
        });
        Add("random_bytes", "printable", All, c =>
        {
            var b = new byte[c.Rng.Next(8, 2049)];
            for (int i = 0; i < b.Length; i++) b[i] = (byte)c.Rng.Next(0x20, 0x7f);
            return (b, Malformed);
        });
        Add("random_bytes", "control", All, c =>
        {
            var b = new byte[c.Rng.Next(8, 513)];
            for (int i = 0; i < b.Length; i++) b[i] = (byte)c.Rng.Next(0x00, 0x20);
            return (b, Malformed);
        });
        Add("random_bytes", "valid_prefix", All, c =>
        {
            var head = c.T.Payload.AsSpan(0, c.Rng.Next(1, c.T.Payload.Length));
            var tail = new byte[c.Rng.Next(1, 1025)];
            c.Rng.NextBytes(tail);
            byte[] b = [.. head, .. tail];
            return new Built(b, [ByValidity(b)]);
        });

        // ---- valid messages truncated at a random point ----
        Add("truncated", "cut", All, c =>
        {
            if (!c.T.Payload.All(b => b < 0x80)) throw new InvalidOperationException("templates are expected to be ASCII");
            return (c.T.Payload[..c.Rng.Next(0, c.T.Payload.Length)], Malformed);
        });
        Add("truncated", "cut_after_value", Objects, c =>
        {
            // Cut right after a complete member: the last token is whole, only the closing brackets are missing.
            var text = Encoding.ASCII.GetString(c.T.Payload);
            var commas = Enumerable.Range(0, text.Length).Where(i => text[i] == ',').ToArray();
            return (text[..commas[c.Rng.Next(commas.Length)]], Malformed);
        });

        // ---- deep nesting ----
        Add("deep_nesting", "arrays", All, c =>
        {
            int n = c.Rng.Next(10_000, 100_001);
            return (new string('[', n) + new string(']', n), Malformed);
        });
        // Up to 40,000 levels of {"a": (6 bytes a level with its closing brace) stay below MaxPayloadBytes.
        Add("deep_nesting", "objects", All, c =>
        {
            int n = c.Rng.Next(10_000, 40_001);
            return (Repeat("{\"a\":", n) + "1" + new string('}', n), Malformed);
        });
        Add("deep_nesting", "unclosed", All, c => (Repeat("[{\"a\":", c.Rng.Next(10_000, 30_001)), Malformed));
        Add("deep_nesting", "inside_fields", All, c =>
        {
            int n = c.Rng.Next(10_000, 40_001);
            var deep = c.Rng.Next(2) == 0 ? new string('[', n) + new string(']', n) : Repeat("{\"a\":", n) + "1" + new string('}', n);
            return c.Format == "senml"
                ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1,\"ext\":{deep}"), Malformed)
                : (Fields(c, $"\"{c.Field0}\":{deep}"), Malformed);
        });
        Add("deep_nesting", "in_skipped_section", Lora, c =>
        {
            int n = c.Rng.Next(10_000, 50_001);
            var key = c.Format == "chirpstack" ? "rxInfo" : "correlation_ids";
            return (Uplink(c, o => o[key] = Raw(0), new string('[', n) + new string(']', n)), Malformed);
        });
        Add("deep_nesting", "within_limit", All, c =>
        {
            // 20 levels fit Gateway's JSON depth limit (32): flattened to one field name a.a.a... that no device has.
            var nested = Repeat("{\"a\":", 20) + "1" + new string('}', 20);
            return c.Format == "senml"
                ? (Record(c, $"\"n\":\"bogus_{c.Id}\",\"v\":1,\"ext\":{nested}"), UnknownField)
                : (Fields(c, $"\"bogus_{c.Id}\":{nested}"), UnknownField);
        });

        // ---- huge numbers ----
        Add("huge_numbers", "overflow_literal", All, c => (One(c, c.Field0, c.Pick("1e400", "-1e400", "1E+999", "-9.9e99999")), NonFinite));
        Add("huge_numbers", "digits_400", All, c => (One(c, c.Field0, (c.Rng.Next(2) == 0 ? "-" : "") + Digits(c, 400)), NonFinite));
        Add("huge_numbers", "finite_huge", All, c => (One(c, c.Field0, c.Pick("1e300", "-1e300", "1e12", "-1e12", Digits(c, 300))), OutOfBounds));
        // Finite in the payload, infinite after unit conversion for some types (L/s -> m3/h, ppm -> ug/m3).
        Add("huge_numbers", "double_max", All, c => new(Utf8(One(c, c.Field0, "1.7976931348623157e308")), [NonFinite, OutOfBounds]));
        Add("huge_numbers", "integer_field", All, c =>
            (One(c, "seq", c.Pick("1e300", "123456789012345678901234567890", "-9.3e18", "1.5", "0.000001")), WrongType));
        Add("huge_numbers", "time", All, c =>
        {
            var t = c.Pick("1e400", Digits(c, 400), "99999999999999999999", "1e19");
            if (c.Format == "senml")
                return t.Length > 100 || t == "1e400" ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: t), Malformed) : (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: t), BadTimestamp);
            return (Fields(c, $"\"{c.Field0}\":1", time: t), BadTimestamp);
        });
        Add("huge_numbers", "base_value_sum", ["senml"], c => (Record(c, $"\"bv\":1.7e308,\"n\":\"{c.Field0}\",\"v\":1.7e308"), NonFinite));

        // ---- huge strings ----
        Add("huge_strings", "too_large", All, c =>
        {
            int size = c.Rng.Next(MaxPayloadBytes + 1, 2 * 1024 * 1024 + 1);
            var text = c.Format switch
            {
                "senml" => Record(c, $"\"n\":\"note\",\"vs\":\"@pad@\""),
                "chirpstack" => Uplink(c, o => o["data"] = "@pad@"),
                "tts" => Uplink(c, o => o["uplink_message"]!["frm_payload"] = "@pad@"),
                _ => Fields(c, $"\"note\":\"@pad@\""),
            };
            return (PadTo(text, size), TooLarge);
        });
        Add("huge_strings", "at_limit", ["json"], c => (PadTo(Fields(c, "\"note\":\"@pad@\""), MaxPayloadBytes), UnknownField));
        Add("huge_strings", "one_over_limit", ["json"], c => (PadTo(Fields(c, "\"note\":\"@pad@\""), MaxPayloadBytes + 1), TooLarge));
        Add("huge_strings", "unknown_field", All, c =>
        {
            var s = c.Letters(c.Rng.Next(100_000, 250_001));
            return c.Format == "senml" ? (Record(c, $"\"n\":\"note\",\"vs\":\"{s}\""), UnknownField) : (Fields(c, $"\"note\":\"{s}\""), UnknownField);
        });
        Add("huge_strings", "metric_as_string", All, c => (One(c, c.Field0, $"\"{c.Letters(c.Rng.Next(100_000, 250_001))}\"", "vs"), WrongType));
        Add("huge_strings", "key", All, c =>
        {
            var key = c.Letters(c.Rng.Next(100_000, 250_001));
            return (One(c, key, "1"), UnknownField);
        });
        // The payload names the device (the topic has no device level): the topic cannot contradict it.
        AddOn("huge_strings", "device_id", All, c =>
        {
            var dev = "x" + c.Letters(c.Rng.Next(100_000, 250_001));
            return c.Format switch
            {
                "json" => (Edit(c, o => o["device"] = dev), UnknownDevice),
                "senml" => (Encoding.ASCII.GetString(c.T.Payload).Replace($"urn:dev:city:{c.T.DeviceName}:", $"urn:dev:city:{dev}:"), UnknownDevice),
                "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = dev), UnknownDevice),
                _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = dev), UnknownDevice),
            };
        }, c => c.TopicWithoutDevice);
        Add("huge_strings", "topic_device", ["json", "senml"], c =>
        {
            // The device comes from a 5,000-60,000 character topic level.
            var dev = "x" + c.Letters(c.Rng.Next(5_000, 60_001));
            var topic = c.Format == "json" ? $"city/json/{c.T.Domain}/{dev}/{c.Tag}" : $"city/senml/{c.T.Domain}/{dev}/{c.Tag}";
            var text = c.Format == "json" ? $"{{\"ts\":{c.TsMs},\"{c.Field0}\":1}}" : $"[{{\"bt\":{Seconds(c.TsMs)},\"n\":\"{c.Field0}\",\"v\":1}}]";
            return new(Utf8(text), [UnknownDevice], topic);
        });
        Add("huge_strings", "time", All, c =>
        {
            var s = "2025-01-01T00:00:00" + c.Letters(c.Rng.Next(100_000, 250_001));
            return c.Format == "senml"
                ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: $"\"{s}\""), Malformed)
                : (Fields(c, $"\"{c.Field0}\":1", time: $"\"{s}\""), BadTimestamp);
        });
        Add("huge_strings", "skipped_section_without_decoded", Lora, c =>
        {
            var s = c.Letters(c.Rng.Next(100_000, 250_001));
            return c.Format == "chirpstack"
                ? (Uplink(c, o => { o.Remove("object"); o["data"] = s; }), MissingDecoded)
                : (Uplink(c, o => { var u = o["uplink_message"]!.AsObject(); u.Remove("decoded_payload"); u["frm_payload"] = s; }), MissingDecoded);
        });

        // ---- wrong encodings ----
        Add("wrong_encodings", "utf16le_bom", All, c => ([.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes(Ascii(c.T))], InvalidUtf8));
        Add("wrong_encodings", "utf16be_bom", All, c => ([.. Encoding.BigEndianUnicode.GetPreamble(), .. Encoding.BigEndianUnicode.GetBytes(Ascii(c.T))], InvalidUtf8));
        // Without a byte order mark, UTF-16 and UTF-32 of ASCII text are valid UTF-8 (with NUL bytes), but not JSON.
        Add("wrong_encodings", "utf16le", All, c => (Encoding.Unicode.GetBytes(Ascii(c.T)), Malformed));
        Add("wrong_encodings", "utf32le", All, c => (Encoding.UTF32.GetBytes(Ascii(c.T)), Malformed));
        Add("wrong_encodings", "latin1", All, c =>
        {
            var word = c.Pick("Zürich", "Straße", "café", "Ærø", "½°C", "niño");
            var text = c.Format == "senml"
                ? Record(c, $"\"n\":\"{c.Field0}\",\"u\":\"{word}\",\"v\":1")
                : Fields(c, $"\"site\":\"{word}\",\"{c.Field0}\":1");
            return (Encoding.Latin1.GetBytes(text), InvalidUtf8);
        });
        Add("wrong_encodings", "invalid_sequence", All, c =>
        {
            byte[][] bad =
            [
                [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xF0, 0x80, 0x80, 0xAF], // overlong
                [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xED, 0xB0, 0x80],               // surrogates encoded as UTF-8
                [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],                 // beyond U+10FFFF
                [0x80], [0xBF], [0xE2, 0x82], [0xFE], [0xFF],                             // stray, cut short, never valid
            ];
            var text = c.Format == "senml" ? Record(c, "\"n\":\"@split@\",\"v\":1") : Fields(c, "\"note\":\"@split@\"");
            var parts = text.Split("@split@");
            return ([.. Utf8(parts[0]), .. bad[c.Rng.Next(bad.Length)], .. Utf8(parts[1])], InvalidUtf8);
        });
        // Valid UTF-8 bytes, but a JSON escape of a lone UTF-16 surrogate: no string can be made of it.
        Add("wrong_encodings", "escaped_lone_surrogate", All, c =>
        {
            var s = c.Pick("\\uD800", "\\uDFFF", "ab\\uD83Dcd", "\\uDC00\\uD800");
            return c.Rng.Next(2) == 0 ? (One(c, "note", $"\"{s}\"", "vs"), Malformed) : (One(c, s, "1"), Malformed);
        });
        Add("wrong_encodings", "utf8_bom", All, c => ([0xEF, 0xBB, 0xBF, .. c.T.Payload], Malformed));

        // ---- duplicated keys ----
        Add("duplicated_keys", "field_twice", All, c => c.Format == "senml"
            ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1,\"v\":2"), Malformed)
            : (Fields(c, $"\"{c.Field0}\":1,\"{c.Field0}\":2"), Malformed));
        Add("duplicated_keys", "nested_twice", Objects, c => (Fields(c, "\"extra\":{\"a\":1,\"a\":2}"), Malformed));
        Add("duplicated_keys", "device_twice", ["json"], c => (InsertFirst(c.T, $"\"device\":\"{c.T.DeviceName}\","), Malformed));
        Add("duplicated_keys", "time_twice", ["json", "chirpstack", "tts"], c =>
            (InsertFirst(c.T, c.Format switch { "json" => $"\"ts\":{c.TsMs},", "chirpstack" => "\"time\":null,", _ => "\"received_at\":null," }), Malformed));
        Add("duplicated_keys", "decoded_section_twice", Lora, c =>
            (InsertFirst(c.T, c.Format == "chirpstack" ? "\"object\":{\"seq\":1}," : "\"uplink_message\":{\"decoded_payload\":{\"seq\":1}},"), Malformed));
        Add("duplicated_keys", "device_section_twice", Lora, c =>
            (InsertFirst(c.T, c.Format == "chirpstack" ? "\"deviceInfo\":{}," : "\"end_device_ids\":{},"), Malformed));
        Add("duplicated_keys", "inside_uplink_message", ["tts"], c =>
            (Ascii(c.T).Replace("\"uplink_message\":{", "\"uplink_message\":{\"f_port\":1,\"decoded_payload\":null,"), Malformed));
        Add("duplicated_keys", "inside_decoded", Lora, c =>
        {
            var key = c.Format == "chirpstack" ? "\"object\":{" : "\"decoded_payload\":{";
            return (Ascii(c.T).Replace(key, key + "\"seq\":0,"), Malformed);
        });

        // ---- SenML base fields and records ----
        string[] senml = ["senml"];
        foreach (var (name, members) in new[]
        {
            ("bn_twice", "\"bn\":\"urn:dev:city:{dev}:\",\"bn\":\"urn:dev:city:{ghost}:\",\"n\":\"{f}\",\"v\":1"),
            ("bt_twice", "\"bn\":\"urn:dev:city:{dev}:\",\"bt\":{t},\"bt\":0,\"n\":\"{f}\",\"v\":1"),
            ("bu_twice", "\"bn\":\"urn:dev:city:{dev}:\",\"bu\":\"Cel\",\"bu\":\"degF\",\"n\":\"{f}\",\"v\":1"),
            ("bv_twice", "\"bn\":\"urn:dev:city:{dev}:\",\"bv\":1,\"bv\":2,\"n\":\"{f}\",\"v\":1"),
            ("v_and_vs", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":1,\"vs\":\"1\""),
            ("v_and_vb", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":1,\"vb\":true"),
            ("vs_and_vd", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"vs\":\"a\",\"vd\":\"AQ\""),
            ("bver_99", "\"bver\":99,\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":1"),
            ("bver_11", "\"bn\":\"urn:dev:city:{dev}:\",\"bver\":11,\"n\":\"{f}\",\"v\":1"),
            ("bver_text", "\"bver\":\"10\",\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":1"),
            ("bn_number", "\"bn\":42,\"n\":\"{f}\",\"v\":1"),
            ("bt_text", "\"bn\":\"urn:dev:city:{dev}:\",\"bt\":\"now\",\"n\":\"{f}\",\"v\":1"),
            ("bu_boolean", "\"bn\":\"urn:dev:city:{dev}:\",\"bu\":true,\"n\":\"{f}\",\"v\":1"),
            ("bv_null", "\"bn\":\"urn:dev:city:{dev}:\",\"bv\":null,\"n\":\"{f}\",\"v\":1"),
            ("v_text", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":\"1\""),
            ("vb_number", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"vb\":1"),
            ("must_understand", "\"bn\":\"urn:dev:city:{dev}:\",\"n\":\"{f}\",\"v\":1,\"ext_\":1"),
            ("urn_without_unit", "\"n\":\"urn:dev:city:{dev}\",\"v\":1"),
            ("no_name", "\"v\":1"),
        })
        {
            Add("senml_base_fields", name, senml, c => ("[{" + members.Replace("{dev}", c.T.DeviceName).Replace("{ghost}", c.Ghost)
                .Replace("{f}", c.Field0).Replace("{t}", Seconds(c.TsMs)) + "}]", Malformed));
        }
        Add("senml_base_fields", "data_value", senml, c => (Record(c, $"\"n\":\"{c.Field0}\",\"vd\":\"AQID\""), Unsupported));
        Add("senml_base_fields", "later_base_time_out_of_range", senml, c =>
        {
            // The first record is fine; the second moves the base time beyond what nanoseconds can hold: the pack is refused whole.
            var text = $"[{{\"bn\":\"urn:dev:city:{c.T.DeviceName}:\",\"bt\":{Seconds(c.TsMs)},\"n\":\"{c.Field0}\",\"v\":1}},{{\"bt\":{c.Pick("1e300", "-1e18", "9.3e9")},\"n\":\"{c.Field0}\",\"v\":2}}]";
            return (text, BadTimestamp);
        });
        Add("senml_base_fields", "relative_time_out_of_range", senml, c => (Record(c, $"\"n\":\"{c.Field0}\",\"t\":-1e300,\"v\":1", bt: "0"), BadTimestamp));
        foreach (var (name, records) in new[]
        {
            ("records_numbers", "[1,2,3]"), ("records_strings", "[\"pm25\",\"1\"]"), ("record_null", "[null]"),
            ("record_array", "[[{\"n\":\"x\",\"v\":1}]]"), ("record_boolean", "[true]"),
        })
        {
            Add("senml_base_fields", name, senml, c => (records, Malformed));
        }
        Add("senml_base_fields", "good_record_then_number", senml, c =>
            ($"[{{\"bn\":\"urn:dev:city:{c.T.DeviceName}:\",\"bt\":{Seconds(c.TsMs)},\"n\":\"{c.Field0}\",\"v\":1}},5]", Malformed));

        // ---- missing sections and devices ----
        Add("missing_sections", "no_decoded_section", Lora, c => (Uplink(c, o =>
        {
            if (c.Format == "chirpstack") o.Remove("object"); else o["uplink_message"]!.AsObject().Remove("decoded_payload");
        }), MissingDecoded));
        Add("missing_sections", "decoded_section_null", Lora, c => (Uplink(c, o =>
        {
            if (c.Format == "chirpstack") o["object"] = null; else o["uplink_message"]!["decoded_payload"] = null;
        }), MissingDecoded));
        Add("missing_sections", "decoded_section_not_object", Lora, c =>
        {
            var raw = c.Pick("\"AQID\"", "[1,2]", "42", "true");
            return (Uplink(c, o => { if (c.Format == "chirpstack") o["object"] = Raw(0); else o["uplink_message"]!["decoded_payload"] = Raw(0); }, raw), Malformed);
        });
        Add("missing_sections", "no_uplink_message", ["tts"], c => (Uplink(c, o => o.Remove("uplink_message")), MissingDecoded));
        Add("missing_sections", "uplink_message_not_object", ["tts"], c => (Uplink(c, o => o["uplink_message"] = Raw(0), c.Pick("[]", "\"up\"", "0")), Malformed));
        Add("missing_sections", "empty_object", Lora, c => ("{}", MissingDecoded));
        Add("missing_sections", "only_device_section", Lora, c =>
        {
            var o = JsonNode.Parse(c.T.Payload)!.AsObject();
            var key = c.Format == "chirpstack" ? "deviceInfo" : "end_device_ids";
            return (new JsonObject { [key] = o[key]!.DeepClone() }.ToJsonString(Relaxed), MissingDecoded);
        });
        // Without a device section the device comes from the topic, which names an unregistered one.
        AddOn("missing_sections", "no_device_section", Lora, c => (Uplink(c, o => o.Remove(c.Format == "chirpstack" ? "deviceInfo" : "end_device_ids")), UnknownDevice),
            c => c.TopicOfAnotherDevice);
        Add("missing_sections", "device_section_not_object", Lora, c =>
            (Uplink(c, o => o[c.Format == "chirpstack" ? "deviceInfo" : "end_device_ids"] = Raw(0), c.Pick("\"x\"", "[]", "7")), Malformed));
        AddOn("missing_sections", "empty_device_id", All, c => c.Format switch
        {
            "json" => (Edit(c, o => o["device"] = ""), MissingDevice),
            "senml" => (Encoding.ASCII.GetString(c.T.Payload).Replace($"\"bn\":\"urn:dev:city:{c.T.DeviceName}:\",", ""), MissingDevice),
            "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = ""), MissingDevice),
            _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = ""), MissingDevice),
        }, c => c.TopicWithoutDevice);
        AddOn("missing_sections", "no_device_anywhere", All, c => c.Format switch
        {
            "json" => (Edit(c, o => o.Remove("device")), MissingDevice),
            "senml" => (Encoding.ASCII.GetString(c.T.Payload).Replace($"\"bn\":\"urn:dev:city:{c.T.DeviceName}:\",", ""), MissingDevice),
            "chirpstack" => (Edit(c, o => o.Remove("deviceInfo")), MissingDevice),
            _ => (Edit(c, o => o.Remove("end_device_ids")), MissingDevice),
        }, c => c.TopicWithoutDevice);
        Add("missing_sections", "device_id_not_scalar", Objects, c => c.Format switch
        {
            "json" => (Edit(c, o => o["device"] = new JsonArray("a")), Malformed),
            "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = new JsonObject()), Malformed),
            _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = true), Malformed),
        });
        // A message of one format on another format's route.
        Add("missing_sections", "other_format", All, c => c.Format switch
        {
            "json" => (c.Pick("[{\"n\":\"pm25\",\"v\":1}]", "[]"), Malformed),
            "senml" => ($"{{\"device\":\"{c.T.DeviceName}\",\"{c.Field0}\":1}}", Malformed),
            // A TTS uplink on the ChirpStack route has no "object"; a ChirpStack one on the TTS route no "uplink_message".
            "chirpstack" => ("{\"end_device_ids\":{\"device_id\":\"x\"},\"uplink_message\":{\"decoded_payload\":{\"pm25\":1}}}", MissingDecoded),
            _ => ("{\"deviceInfo\":{\"devEui\":\"0011223344556677\"},\"object\":{\"pm25\":1}}", MissingDecoded),
        });

        // ---- invalid JSON literals ----
        Add("json_syntax", "literal", All, c =>
            (One(c, c.Field0, c.Pick("NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf", "+1", "01", "-01", ".5", "1.", "1e", "-", "0x1F", "'1'", "True", "undefined", "1_000")), Malformed));
        Add("json_syntax", "structure", All, c =>
        {
            var f = c.Field0;
            var raw = c.Pick($"\"{f}\":1,", $"\"{f}\":1 /* c */", $"\"{f}\" 1", $"'{f}':1", $"{f}:1", $"\"{f}\":1,,\"x\":2", $"\"{f}\":\"a\u0001b\"", $"\"{f}\":\"unterminated");
            return c.Format == "senml" ? (Record(c, raw.Replace($"\"{f}\":", "\"n\":\"x\",\"v\":")), Malformed) : (Fields(c, raw), Malformed);
        });

        // ---- wrong types at the top level ----
        Add("wrong_top_level", "scalar", All, c => (c.Pick("null", "true", "false", "42", "-1.5e3", "\"text\"", "", "   ", "\r\n"), Malformed));
        Add("wrong_top_level", "other_container", All, c => c.Format == "senml"
            ? (c.Pick("{}", $"{{\"n\":\"{c.Field0}\",\"v\":1}}", "{\"e\":[]}"), Malformed)
            : (c.Pick("[]", "[1]", "[" + Ascii(c.T) + "]"), Malformed));
        Add("wrong_top_level", "trailing_content", All, c => (Ascii(c.T) + c.Pick(" x", Ascii(c.T), ",", "]", "}", " null"), Malformed));

        // ---- unknown devices ----
        // Published on a topic without a device level: with one, the topic's device would be the
        // registered one and the payload's another (device_mismatch, below).
        AddOn("unknown_devices", "ghost", All, c => c.Format switch
        {
            "json" => (Edit(c, o => o["device"] = c.Ghost), UnknownDevice),
            "senml" => (Ascii(c.T).Replace($"urn:dev:city:{c.T.DeviceName}:", $"urn:dev:city:{c.Ghost}:"), UnknownDevice),
            "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = $"ffff{c.Id:x12}"), UnknownDevice),
            _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = c.Ghost), UnknownDevice),
        }, c => c.TopicWithoutDevice);
        AddOn("unknown_devices", "strange_id", All, c =>
        {
            var id = c.Pick("ghost \u2603 {0}", "GHOST-{0}", " {0} ", "ghost\t{0}", "../../{0}", "ghost,{0}=\"x\"", "ghost\\{0}") .Replace("{0}", c.Id.ToString(CultureInfo.InvariantCulture));
            return c.Format switch
            {
                "json" => (Edit(c, o => o["device"] = id), UnknownDevice),
                "senml" => (Ascii(c.T).Replace($"\"bn\":\"urn:dev:city:{c.T.DeviceName}:\"", $"\"bn\":{JsonSerializer.Serialize("urn:dev:city:" + id + ":", Relaxed)}"), UnknownDevice),
                "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = id), UnknownDevice),
                _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = id), UnknownDevice),
            };
        }, c => c.TopicWithoutDevice);
        AddOn("unknown_devices", "numeric_id", Objects, c => c.Format switch
        {
            "json" => (Edit(c, o => o["device"] = 9_000_000 + c.Id), UnknownDevice),
            "chirpstack" => (Edit(c, o => o["deviceInfo"]!["devEui"] = 9_000_000 + c.Id), UnknownDevice),
            _ => (Edit(c, o => o["end_device_ids"]!["device_id"] = 9_000_000 + c.Id), UnknownDevice),
        }, c => c.TopicWithoutDevice);

        // ---- one device speaking for another ----
        // A valid message of a registered device on the topic of another: the broker's per-topic
        // permissions would otherwise mean nothing.
        AddOn("impersonation", "other_topic", All, c => (c.T.Payload, DeviceMismatch), c => c.TopicOfAnotherDevice);

        // ---- bad field values (each payload carries the one bad field only) ----
        Add("bad_values", "metric_as_text", All, c => (One(c, c.Field0, $"\"{c.Pick("high", "12", "", "NaN")}\"", "vs"), WrongType));
        Add("bad_values", "metric_as_boolean", All, c => (One(c, c.Field0, c.Pick("true", "false"), "vb"), WrongType));
        Add("bad_values", "integer_as_text", All, c => (One(c, "seq", "\"17\"", "vs"), WrongType));
        Add("bad_values", "unknown_field", All, c => (One(c, c.Pick("bogus", "PM25", "pm2.5", "temp_k", "battery_mv"), "1"), UnknownField));
        Add("bad_values", "out_of_bounds", All, c => (One(c, c.Field0, c.Pick("-1e9", "1e9", "-1e7", "123456789")), OutOfBounds));
        Add("bad_values", "unknown_unit", ["senml"], c => (Record(c, $"\"n\":\"{c.Field0}\",\"u\":\"{c.Pick("furlong", "degR", "parsec")}\",\"v\":1"), "unknown_unit"));
        Add("bad_values", "array", Objects, c => (One(c, c.Field0, c.Pick("[1,2]", "[]", "[[1]]")), Unsupported));
        Add("bad_values", "object", Objects, c => (One(c, c.Field0, "{\"value\":1}"), UnknownField));

        // ---- bad timestamps ----
        Add("bad_timestamps", "text", All, c => c.Format == "senml"
            ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: "\"yesterday\""), Malformed)
            : (Fields(c, $"\"{c.Field0}\":1", time: c.Pick("\"yesterday\"", "\"2025-13-45T99:00:00Z\"", "\"\"")), BadTimestamp));
        Add("bad_timestamps", "wrong_type", All, c => c.Format == "senml"
            ? (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: c.Pick("true", "{}", "[1]")), Malformed)
            : (Fields(c, $"\"{c.Field0}\":1", time: c.Pick("true", "{}", "[1]")), BadTimestamp));
        Add("bad_timestamps", "number_for_iso", Lora, c => (Fields(c, $"\"{c.Field0}\":1", time: c.TsMs.ToString(CultureInfo.InvariantCulture)), BadTimestamp));
        Add("bad_timestamps", "too_old", All, c => (OneAt(c, c.Now.AddDays(-c.Rng.Next(8, 4000))), ClockSkew));
        Add("bad_timestamps", "too_new", All, c => (OneAt(c, c.Now.AddMinutes(c.Rng.Next(10, 100_000))), ClockSkew));
        // Dates a DateTimeOffset can hold but Unix nanoseconds in a long cannot (before 1677-09-21, after 2262-04-11).
        Add("bad_timestamps", "beyond_nanoseconds", Objects, c =>
        {
            var wrapsToNow = c.Now.AddTicks(184_467_440_737_095_516); // + 2^64 ns: wraps around to now in 64-bit arithmetic
            var t = c.Rng.Next(6) switch
            {
                0 => wrapsToNow.ToString("O", CultureInfo.InvariantCulture),
                1 => wrapsToNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture) + "000123+00:00",
                2 => "9999-12-31T23:59:59Z",
                3 => "0001-01-01T00:00:00Z",
                4 => "1600-02-29T12:00:00.123456789Z",
                _ => "2262-04-11T23:47:16.854775808Z", // one nanosecond past long.MaxValue
            };
            return (Fields(c, $"\"{c.Field0}\":1", time: $"\"{t}\""), BadTimestamp);
        });
        Add("bad_timestamps", "last_nanosecond", Objects, c => (Fields(c, $"\"{c.Field0}\":1", time: "\"2262-04-11T23:47:16.854775807Z\""), ClockSkew));
        Add("bad_timestamps", "senml_beyond_nanoseconds", senml, c => (Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: c.Pick("2e10", "-1e10", "9.3e9")), BadTimestamp));

        // ---- bad tags (flat JSON): one entry per message, however many fields it has ----
        Add("bad_tags", "long_tag", ["json"], c => (Edit(c, o => o[c.Pick("lane", "vehicleType")] = c.Letters(c.Rng.Next(257, 100_001))), WrongType));
        Add("bad_tags", "control_characters", ["json"], c => (Edit(c, o => o["lane"] = c.Pick("1\n2", "\u0000", "a\u001bb", "\u0085")), WrongType));
        Add("bad_tags", "not_scalar", ["json"], c => (Edit(c, o => o["lane"] = c.Rng.Next(2) == 0 ? new JsonArray(1) : new JsonObject { ["n"] = 1 }), Malformed));
        Add("bad_tags", "boolean", ["json"], c => (Edit(c, o => o["vehicleType"] = true), Malformed));

        return list;
    }

    // ---- payload builders ----

    /// <summary>The format's message for the template's device with the given members as its only
    /// fields (flat JSON keys, ChirpStack "object", TTS "decoded_payload"); <paramref name="time"/>
    /// replaces the device time (raw JSON).</summary>
    private static string Fields(Ctx c, string members, string? time = null) => c.Format switch
    {
        "json" => $"{{\"device\":\"{c.T.DeviceName}\",\"ts\":{time ?? c.TsMs.ToString(CultureInfo.InvariantCulture)},{members}}}",
        "chirpstack" => Uplink(c, o =>
        {
            o["object"] = Raw(0);
            if (time is not null) o["time"] = Raw(1);
        }, "{" + members + "}", time ?? ""),
        "tts" => Uplink(c, o =>
        {
            var u = o["uplink_message"]!;
            u["decoded_payload"] = Raw(0);
            if (time is not null) u["received_at"] = Raw(1);
        }, "{" + members + "}", time ?? ""),
        _ => throw new InvalidOperationException("SenML payloads are built with Record"),
    };

    /// <summary>A SenML pack of one record for the template's device.</summary>
    private static string Record(Ctx c, string members, string? bt = null) =>
        $"[{{\"bn\":\"urn:dev:city:{c.T.DeviceName}:\",\"bt\":{bt ?? Seconds(c.TsMs)},{members}}}]";

    /// <summary>One field with a raw JSON value; in SenML a record with <paramref name="senmlKey"/> as the value key.</summary>
    private static string One(Ctx c, string field, string raw, string senmlKey = "v") =>
        c.Format == "senml" ? Record(c, $"\"n\":{Quote(field)},\"{senmlKey}\":{raw}") : Fields(c, $"{Quote(field)}:{raw}");

    /// <summary>One valid field at a given device time.</summary>
    private static string OneAt(Ctx c, DateTimeOffset t) => c.Format switch
    {
        "json" => Fields(c, $"\"{c.Field0}\":1", time: t.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)),
        "senml" => Record(c, $"\"n\":\"{c.Field0}\",\"v\":1", bt: Seconds(t.ToUnixTimeMilliseconds())),
        _ => Fields(c, $"\"{c.Field0}\":1", time: $"\"{t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)}\""),
    };

    /// <summary>The template uplink (ChirpStack or TTS) edited; <see cref="Raw"/>(i) placeholders become raws[i] verbatim.</summary>
    private static string Uplink(Ctx c, Action<JsonObject> edit, params string[] raws)
    {
        var o = JsonNode.Parse(c.T.Payload)!.AsObject();
        edit(o);
        var s = o.ToJsonString(Relaxed);
        for (int i = 0; i < raws.Length; i++) s = s.Replace($"\"@raw{i}@\"", raws[i]);
        return s;
    }

    /// <summary>The template message (any JSON object format) edited.</summary>
    private static string Edit(Ctx c, Action<JsonObject> edit) => Uplink(c, edit);

    private static JsonNode Raw(int i) => JsonValue.Create($"@raw{i}@");

    /// <summary>The template with raw members inserted right after its opening brace.</summary>
    private static string InsertFirst(PublishedMessage t, string members)
    {
        var s = Ascii(t);
        return "{" + members + s[1..];
    }

    /// <summary>Fills the "@pad@" placeholder so the payload is exactly <paramref name="size"/> bytes (ASCII).</summary>
    private static string PadTo(string text, int size)
    {
        int pad = size - (text.Length - "@pad@".Length);
        if (pad < 0) throw new ArgumentException("the payload is already larger than the target size");
        return text.Replace("@pad@", new string('x', pad));
    }

    private static string Repeat(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();

    private static string Digits(Ctx c, int n)
    {
        var sb = new StringBuilder(n);
        sb.Append((char)('1' + c.Rng.Next(9)));
        for (int i = 1; i < n; i++) sb.Append((char)('0' + c.Rng.Next(10)));
        return sb.ToString();
    }

    private static string Seconds(long ms) => (ms / 1000m).ToString(CultureInfo.InvariantCulture);

    /// <summary>A JSON string; a name that already holds JSON escapes (\\uD800) is used as it is.</summary>
    private static string Quote(string s) => s.Contains('\\') ? "\"" + s + "\"" : JsonSerializer.Serialize(s, Relaxed);

    private static string Ascii(PublishedMessage t) => Encoding.ASCII.GetString(t.Payload);

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Random bytes are checked for UTF-8 before the decoders see them.</summary>
    private static string ByValidity(byte[] b) => System.Text.Unicode.Utf8.IsValid(b) ? Malformed : InvalidUtf8;
}
