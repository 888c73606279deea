using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;

namespace CityGateway.Tests.ExchangeTrust;

public sealed class SignedDocumentTests
{
    private static JsonObject Payload() => new()
    {
        ["release"] = "2025-06-rel-0007",
        ["partner"] = "ghent",
        ["rows"] = 1200,
        ["epsilon"] = 0.5,
        ["aggregates"] = new JsonArray(
            new JsonObject { ["district"] = "Nord", ["metric"] = "NO2", ["mean"] = 23.25, ["n"] = 48 },
            new JsonObject { ["district"] = "Zürich-Süd \"A\"", ["metric"] = "PM2.5", ["mean"] = 1e-7, ["n"] = 3 }),
    };

    [Fact]
    public void An_envelope_verifies_and_has_the_documented_shape()
    {
        using var signer = ReleaseSigner.Generate();
        var payload = Payload();
        var envelope = SignedDocument.Create(payload, signer);

        Assert.True(SignedDocument.VerifyEnvelope(envelope, signer.PublicKeyPem, out var error), error);
        Assert.Null(error);
        Assert.Equal(new[] { "payload", "signature" }, envelope.Select(m => m.Key).ToArray());
        var sig = envelope["signature"]!.AsObject();
        Assert.Equal(new[] { "alg", "keyId", "value" }, sig.Select(m => m.Key).ToArray());
        Assert.Equal("ES256", (string?)sig["alg"]);
        Assert.Equal(signer.KeyId, (string?)sig["keyId"]);
        // The signature is over the canonical payload and nothing else.
        Assert.True(ReleaseSigner.Verify(signer.PublicKeyPem, CanonicalJson.Serialize(payload), (string)sig["value"]!));
        // The caller's payload is copied, not moved into the envelope.
        Assert.Null(payload.Parent);
        payload["rows"] = 1;
        Assert.True(SignedDocument.VerifyEnvelope(envelope, signer.PublicKeyPem, out _));
    }

    [Fact]
    public void An_envelope_survives_reformatting_in_transit()
    {
        using var signer = ReleaseSigner.Generate();
        var envelope = SignedDocument.Create(Payload(), signer);
        var text = envelope.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        // Reordered members, escaped characters, other number spellings: the same canonical payload.
        var rewritten = text.Replace("\"rows\": 1200", "\"rows\": 1.2E3").Replace("\"ghent\"", "\"gh\\u0065nt\"");
        Assert.NotEqual(text, rewritten);
        var reparsed = JsonNode.Parse(rewritten)!.AsObject();
        var payload = reparsed["payload"]!.AsObject();
        var reordered = new JsonObject();
        foreach (var m in payload.Reverse().ToList())
        {
            payload.Remove(m.Key);
            reordered[m.Key] = m.Value;
        }
        var signature = reparsed["signature"]!.DeepClone();
        var moved = new JsonObject { ["signature"] = signature, ["payload"] = reordered };
        Assert.True(SignedDocument.VerifyEnvelope(moved, signer.PublicKeyPem, out var error), error);
    }

    [Fact]
    public void Tampered_or_malformed_envelopes_fail_with_a_reason()
    {
        using var signer = ReleaseSigner.Generate();
        using var other = ReleaseSigner.Generate();
        var good = SignedDocument.Create(Payload(), signer);

        var cases = new List<(string What, Action<JsonObject> Change, string Reason)>
        {
            ("payload value", e => e["payload"]!["rows"] = 1201, "does not match"),
            ("nested payload value", e => e["payload"]!["aggregates"]![0]!["mean"] = 23.26, "does not match"),
            ("payload member added", e => e["payload"]!["note"] = "x", "does not match"),
            ("payload member removed", e => e["payload"]!.AsObject().Remove("epsilon"), "does not match"),
            ("array order", e => { var a = e["payload"]!["aggregates"]!.AsArray(); var first = a[0]!; a.RemoveAt(0); a.Add(first); }, "does not match"),
            ("signature from another payload", e => e["signature"]!["value"] = signer.Sign([1, 2, 3]), "does not match"),
            ("algorithm", e => e["signature"]!["alg"] = "none", "unsupported algorithm"),
            ("key id", e => e["signature"]!["keyId"] = other.KeyId, "signed with key"),
            ("extra envelope member", e => e["unsigned"] = "trust me", "unexpected envelope member"),
            ("extra signature member", e => e["signature"]!["x5u"] = "http://evil", "unexpected signature member"),
            ("no signature", e => e.Remove("signature"), "\"signature\" is missing"),
            ("no payload", e => e.Remove("payload"), "\"payload\" is missing"),
            ("payload not an object", e => e["payload"] = new JsonArray(1), "\"payload\" is missing or not an object"),
            ("value not a string", e => e["signature"]!["value"] = 12, "\"signature.value\""),
            ("value garbage", e => e["signature"]!["value"] = "%%%", "does not match"),
            ("keyId missing", e => e["signature"]!.AsObject().Remove("keyId"), "\"signature.keyId\""),
        };
        foreach (var (what, change, reason) in cases)
        {
            var envelope = good.DeepClone().AsObject();
            change(envelope);
            Assert.False(SignedDocument.VerifyEnvelope(envelope, signer.PublicKeyPem, out var error), what);
            Assert.Contains(reason, error);
        }

        Assert.False(SignedDocument.VerifyEnvelope(good, other.PublicKeyPem, out var wrongKey));
        Assert.Contains("signed with key", wrongKey);
        Assert.False(SignedDocument.VerifyEnvelope(good, "garbage", out var badKey));
        Assert.NotNull(badKey);
        Assert.False(SignedDocument.VerifyEnvelope(null!, signer.PublicKeyPem, out _));
        Assert.False(SignedDocument.VerifyEnvelope(good, null!, out _));
        Assert.True(SignedDocument.VerifyEnvelope(good, signer.PublicKeyPem, out _));
    }
}
