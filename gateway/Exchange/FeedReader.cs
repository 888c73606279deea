using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange;

/// <summary>A partner's document (well-known document, feed, release) is not what the exchange
/// protocol says: missing member, wrong JSON type, unparsable value, or not JSON at all.</summary>
public sealed class FeedFormatException(string message, Exception? inner = null) : Exception(message, inner);

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
}
