using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange;

/// <summary>A partner's document (well-known document, feed, release) is not what the exchange
/// protocol says: missing member, wrong JSON type, unparsable value, or not JSON at all.
/// <see cref="Reason"/> is a short stable word for counting (format, window, row).</summary>
public sealed class FeedFormatException(string message, Exception? inner = null, string reason = "format") : Exception(message, inner)
{
    public string Reason { get; } = reason;
}

/// <summary>
/// Reads members of an untrusted JSON document, each either of the type the protocol says or a
/// <see cref="FeedFormatException"/> naming the member. JsonNode's own accessors throw
/// InvalidOperationException or NullReferenceException on a wrong type or a missing member, which a
/// loop cannot tell from a bug of ours.
/// </summary>
internal static class FeedReader
{
    public static JsonObject ParseObject(string text, string what)
    {
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new FeedFormatException($"{what} is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FeedFormatException($"{what} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Parses UTF-8 bytes (a response body already bounded in size) into an object.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8, string what)
    {
        try
        {
            return JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { MaxDepth = 32 }) as JsonObject
                ?? throw new FeedFormatException($"{what} is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FeedFormatException($"{what} is not valid JSON: {e.Message}", e);
        }
    }

    public static JsonObject Object(JsonNode? node, string what) =>
        node as JsonObject ?? throw new FeedFormatException($"{what} is not a JSON object");

    public static JsonArray Array(JsonNode? node, string what) =>
        node as JsonArray ?? throw new FeedFormatException($"{what} is not a JSON array");

    public static string String(JsonNode? node, string what) =>
        OptionalString(node, what) ?? throw new FeedFormatException($"{what} is missing");

    /// <summary>Null when absent or JSON null; a value of another type is an error.</summary>
    public static string? OptionalString(JsonNode? node, string what) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String && v.TryGetValue(out string? s) => s,
        _ => throw new FeedFormatException($"{what} is not a string"),
    };

    public static double Number(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) ? d
        : throw new FeedFormatException($"{what} is not a number");

    public static long Integer(JsonNode? node, string what) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long l) ? l
        : throw new FeedFormatException($"{what} is not an integer");

    public static bool? OptionalBool(JsonNode? node, string what) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValueKind() == JsonValueKind.True,
        _ => throw new FeedFormatException($"{what} is not true or false"),
    };

    public static DateTimeOffset Time(JsonNode? node, string what) =>
        DateTimeOffset.TryParse(String(node, what), CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t
        : throw new FeedFormatException($"{what} is not a date and time");

    private static readonly string[] UtcFormats =
        ["yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", "yyyy-MM-dd'T'HH:mm:sszzz", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz"];

    /// <summary>An ISO-8601 date and time in UTC ("Z" or "+00:00"); a local time, a date alone or
    /// another offset is an error.</summary>
    public static DateTimeOffset UtcTime(JsonNode? node, string what, string reason = "format")
    {
        string? text;
        try { text = OptionalString(node, what); }
        catch (FeedFormatException e) { throw new FeedFormatException(e.Message, reason: reason); }
        if (text is null) throw new FeedFormatException($"{what} is missing", reason: reason);
        if (text.Length > 40
            || !DateTimeOffset.TryParseExact(text, UtcFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            || t.Offset != TimeSpan.Zero)
            throw new FeedFormatException($"{what} '{Shown(text)}' is not a UTC date and time (yyyy-MM-ddTHH:mm:ssZ)", reason: reason);
        return t;
    }

    /// <summary>Earliest window start taken from a partner.</summary>
    public static readonly DateTimeOffset EarliestWindow = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Windows shorter than this are finer than any agreement shares.</summary>
    public static readonly TimeSpan ShortestWindow = TimeSpan.FromMinutes(15);

    /// <summary>
    /// A release's window: UTC start and end, start from 2000 on, end at most a day after
    /// <paramref name="now"/>, end after start, a length that divides a day and is at least 15
    /// minutes, and a start aligned to that length. Anything else names the rule it breaks.
    /// </summary>
    public static (DateTimeOffset Start, DateTimeOffset End) Window(JsonNode? node, DateTimeOffset now, string what = "payload.window")
    {
        var window = node as JsonObject ?? throw new FeedFormatException($"{what} is not a JSON object", reason: "window");
        var start = UtcTime(window["start"], what + ".start", "window");
        var end = UtcTime(window["end"], what + ".end", "window");
        var latest = now.AddDays(1);
        if (start < EarliestWindow || start > latest)
            throw new FeedFormatException($"{what}.start {start:O} is outside {EarliestWindow:yyyy-MM-dd} .. a day from now", reason: "window");
        if (end > latest)
            throw new FeedFormatException($"{what}.end {end:O} is more than a day in the future", reason: "window");
        if (end <= start)
            throw new FeedFormatException($"{what}.end {end:O} is not after its start {start:O}", reason: "window");
        var length = end - start;
        if (length < ShortestWindow)
            throw new FeedFormatException($"{what} is {length} long, shorter than {ShortestWindow}", reason: "window");
        if (TimeSpan.TicksPerDay % length.Ticks != 0)
            throw new FeedFormatException($"{what} is {length} long, which does not divide a day", reason: "window");
        if (start.UtcTicks % length.Ticks != 0)
            throw new FeedFormatException($"{what}.start {start:O} is not aligned to its length {length}", reason: "window");
        return (start, end);
    }

    /// <summary>Longest district, domain, metric or aggregate name taken from a partner.</summary>
    public const int MaxNameLength = 128;

    /// <summary>
    /// A name that becomes a tag value (district, domain, metric, aggregate): 1 to 128 characters of
    /// letters, digits, space and - _ . : / only (no control characters, quotes, commas or equals
    /// signs), not starting or ending with a space.
    /// </summary>
    public static string Name(JsonNode? node, string what)
    {
        string? text;
        try { text = OptionalString(node, what); }
        catch (FeedFormatException e) { throw new FeedFormatException(e.Message, reason: "row"); }
        if (text is null) throw new FeedFormatException($"{what} is missing", reason: "row");
        if (text.Length is 0 or > MaxNameLength)
            throw new FeedFormatException($"{what} has {text.Length} characters (1..{MaxNameLength})", reason: "row");
        if (text[0] == ' ' || text[^1] == ' ')
            throw new FeedFormatException($"{what} '{Shown(text)}' starts or ends with a space", reason: "row");
        foreach (char c in text)
            if (!(char.IsLetterOrDigit(c) || c is ' ' or '-' or '_' or '.' or ':' or '/'))
                throw new FeedFormatException($"{what} '{Shown(text)}' has a character outside letters, digits, space and - _ . : /", reason: "row");
        return text;
    }

    /// <summary>A finite number (JSON has no NaN, but 1e999 reads as infinity).</summary>
    public static double FiniteNumber(JsonNode? node, string what)
    {
        double d;
        try { d = Number(node, what); }
        catch (FeedFormatException e) { throw new FeedFormatException(e.Message, reason: "row"); }
        return double.IsFinite(d) ? d : throw new FeedFormatException($"{what} is not a finite number", reason: "row");
    }

    /// <summary>A partner's text as it may appear in a log line: at most 64 characters, control characters replaced.</summary>
    public static string Shown(string text)
    {
        var cut = text.Length > 64 ? text[..64] + "…" : text;
        return string.Create(cut.Length, cut, (span, s) =>
        {
            for (int i = 0; i < s.Length; i++) span[i] = char.IsControl(s[i]) ? '?' : s[i];
        });
    }
}
