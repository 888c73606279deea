using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;

namespace CityGateway.Exchange.Audit;

/// <summary>
/// A signed checkpoint of the audit log: the city's signature on "entry <see cref="Seq"/> of our
/// audit log has hash <see cref="Head"/>". A <see cref="SignedDocument"/> envelope whose payload is
/// exactly
/// <code>{"type":"audit-checkpoint","city":"&lt;city id&gt;","seq":N,"head":"&lt;64 hex&gt;","time":"yyyy-MM-ddTHH:mm:ssZ"}</code>
/// </summary>
/// <remarks>
/// A partner that keeps a checkpoint can later hold the city to it: a log that no longer has an
/// entry N with that hash (edited and re-chained, or cut below N) fails
/// <c>Gateway exchange verify-audit --file LOG --checkpoint FILE --public-key PEM</c>.
/// <c>time</c> is when the gateway signed it (whole seconds, UTC), not a time of any reading.
/// </remarks>
public sealed record AuditCheckpoint(string City, long Seq, string Head, DateTimeOffset Time, string KeyId, JsonObject Envelope)
{
    public const string Type = "audit-checkpoint";
    internal const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";
    private const int MaxCityLength = 128;
    private static readonly string[] PayloadMembers = ["type", "city", "seq", "head", "time"];

    /// <summary>The head the checkpoint vouches for, as <c>--anchor</c> takes it.</summary>
    public AuditHead AuditHead => new(Seq, Head);

    /// <summary>The payload of a checkpoint of <paramref name="head"/>.</summary>
    public static JsonObject PayloadOf(string city, AuditHead head, DateTimeOffset time) => new()
    {
        ["type"] = Type,
        ["city"] = city,
        ["seq"] = head.Seq,
        ["head"] = head.Hash,
        ["time"] = time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Reads an envelope's shape and payload (untrusted input); does not check the signature
    /// (<see cref="VerifySignature"/>). Null with the reason in <paramref name="error"/> when it is
    /// not a checkpoint. Never throws.
    /// </summary>
    public static AuditCheckpoint? Parse(JsonNode? envelope, out string? error)
    {
        try
        {
            string? problem = null;
            var checkpoint = ReadOrFail(envelope, why => { problem = why; return null; });
            error = problem;
            return checkpoint;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            error = "not a checkpoint: " + e.Message;
            return null;
        }
    }

    private static AuditCheckpoint? ReadOrFail(JsonNode? node, Func<string, AuditCheckpoint?> fail)
    {
        if (node is not JsonObject envelope) return fail("the checkpoint is not a JSON object");
        foreach (var member in envelope)
            if (member.Key is not (SignedDocument.PayloadMember or SignedDocument.SignatureMember)) return fail($"unexpected envelope member \"{member.Key}\"");
        if (envelope[SignedDocument.SignatureMember] is not JsonObject signature) return fail("the checkpoint is not signed (no \"signature\" object)");
        if (StringOf(signature["keyId"]) is not { Length: > 0 and <= 64 } keyId) return fail("\"signature.keyId\" is missing or not a short string");
        if (envelope[SignedDocument.PayloadMember] is not JsonObject payload) return fail("\"payload\" is missing or not an object");
        foreach (var member in payload)
            if (Array.IndexOf(PayloadMembers, member.Key) < 0) return fail($"unexpected payload member \"{member.Key}\"");
        if (StringOf(payload["type"]) != Type) return fail($"payload.type is not \"{Type}\"");
        if (StringOf(payload["city"]) is not { Length: > 0 and <= MaxCityLength } city) return fail($"payload.city is not a string of 1 to {MaxCityLength} characters");
        if (payload["seq"] is not JsonValue seqValue || seqValue.GetValueKind() != JsonValueKind.Number
            || !long.TryParse(seqValue.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out long seq) || seq < 1)
            return fail("payload.seq is not a positive integer");
        if (StringOf(payload["head"]) is not { } head || !AuditLog.IsHash(head)) return fail("payload.head is not 64 lower-case hex digits");
        if (StringOf(payload["time"]) is not { } timeText || !DateTimeOffset.TryParseExact(timeText, TimeFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
            return fail("payload.time is not a UTC time yyyy-MM-ddTHH:mm:ssZ");
        return new AuditCheckpoint(city, seq, head, time, keyId, envelope);
    }

    /// <summary>True when the envelope is signed by the key in <paramref name="publicKeyPem"/>; never throws.</summary>
    public bool VerifySignature(string publicKeyPem, out string? error) => SignedDocument.VerifyEnvelope(Envelope, publicKeyPem, out error);

    public override string ToString() =>
        $"city {City}, seq {Seq}, head {Head}, signed {Time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture)} with key {KeyId}";

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
