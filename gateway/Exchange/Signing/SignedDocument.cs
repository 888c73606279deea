using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// A signed release envelope:
/// <code>
/// { "payload": { ... },
///   "signature": { "alg": "ES256", "keyId": "&lt;22 chars&gt;", "value": "&lt;base64url r‖s&gt;" } }
/// </code>
/// The signature is over <see cref="CanonicalJson"/> of the payload object alone, so the envelope can
/// be re-indented, its members reordered or its strings re-escaped in transit and still verify.
/// </summary>
/// <remarks>
/// Verification is strict: the envelope has exactly the members <c>payload</c> and <c>signature</c>,
/// the signature object exactly <c>alg</c>, <c>keyId</c> and <c>value</c>, <c>alg</c> is ES256 and
/// <c>keyId</c> is the id of the key it is checked with. Nothing outside the payload is signed, so
/// nothing outside it is accepted.
/// </remarks>
public static class SignedDocument
{
    public const string PayloadMember = "payload";
    public const string SignatureMember = "signature";

    /// <summary>An envelope around a copy of <paramref name="payload"/>, signed by <paramref name="signer"/>.</summary>
    public static JsonObject Create(JsonObject payload, ReleaseSigner signer)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(signer);
        var copy = (JsonObject)payload.DeepClone();
        var value = signer.Sign(CanonicalJson.Serialize(copy));
        return new JsonObject
        {
            [PayloadMember] = copy,
            [SignatureMember] = new JsonObject
            {
                ["alg"] = ReleaseSigner.Algorithm,
                ["keyId"] = signer.KeyId,
                ["value"] = value,
            },
        };
    }

    /// <summary>
    /// True when the envelope is well formed and its payload is signed by the key in
    /// <paramref name="publicKeyPem"/>; otherwise false with the reason in <paramref name="error"/>.
    /// Never throws.
    /// </summary>
    public static bool VerifyEnvelope(JsonObject envelope, string publicKeyPem, out string? error)
    {
        try
        {
            error = Check(envelope, publicKeyPem);
            return error is null;
        }
        catch (Exception e)
        {
            error = "envelope cannot be checked: " + e.Message;
            return false;
        }
    }

    private static string? Check(JsonObject? envelope, string? publicKeyPem)
    {
        if (envelope is null) return "no envelope";
        var expectedKeyId = publicKeyPem is null ? null : ReleaseSigner.KeyIdOf(publicKeyPem);
        if (expectedKeyId is null) return "the public key is not a P-256 \"PUBLIC KEY\" PEM";

        foreach (var member in envelope)
            if (member.Key is not (PayloadMember or SignatureMember)) return $"unexpected envelope member \"{member.Key}\"";
        if (envelope[PayloadMember] is not JsonObject payload) return "\"payload\" is missing or not an object";
        if (envelope[SignatureMember] is not JsonObject signature) return "\"signature\" is missing or not an object";
        foreach (var member in signature)
            if (member.Key is not ("alg" or "keyId" or "value")) return $"unexpected signature member \"{member.Key}\"";

        var alg = StringOf(signature["alg"]);
        var keyId = StringOf(signature["keyId"]);
        var value = StringOf(signature["value"]);
        if (alg is null) return "\"signature.alg\" is missing or not a string";
        if (alg != ReleaseSigner.Algorithm) return $"unsupported algorithm \"{alg}\" (expected {ReleaseSigner.Algorithm})";
        if (keyId is null) return "\"signature.keyId\" is missing or not a string";
        if (keyId != expectedKeyId) return $"signed with key {keyId}, not with the given key {expectedKeyId}";
        if (value is null) return "\"signature.value\" is missing or not a string";

        byte[] canonical;
        try { canonical = CanonicalJson.Serialize(payload); }
        // JsonNode's accessors throw InvalidOperationException for a value of an unexpected kind.
        catch (Exception e) when (e is ArgumentException or JsonException or InvalidOperationException)
        {
            return "the payload has no canonical form: " + e.Message;
        }
        return ReleaseSigner.Verify(publicKeyPem!, canonical, value) ? null : "the signature does not match the payload";
    }

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
