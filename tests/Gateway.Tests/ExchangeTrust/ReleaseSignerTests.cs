using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ExchangeTrust;

public sealed class ReleaseSignerTests
{
    private static readonly byte[] SmallPayload = CanonicalJson.Serialize(new JsonObject { ["partner"] = "ghent", ["rows"] = 12, ["eps"] = 0.5 });

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string s)
    {
        s = s.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s + new string('=', (4 - s.Length % 4) % 4));
    }

    [Fact]
    public void Sign_and_verify_round_trip_with_the_documented_formats()
    {
        using var signer = ReleaseSigner.Generate();
        var signature = signer.Sign(SmallPayload);

        Assert.True(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, signature));
        Assert.Equal(64, FromBase64Url(signature).Length); // P1363 r||s
        Assert.Matches("^[A-Za-z0-9_-]{86}$", signature);

        // The signature is an ordinary ES256 one: .NET's own verifier with the SPKI public key accepts it.
        using var ecdsa = ECDsa.Create();
        ecdsa.ImportFromPem(signer.PublicKeyPem);
        Assert.True(ecdsa.VerifyData(SmallPayload, FromBase64Url(signature), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", signer.PublicKeyPem);

        // Key id: base64url of the first 16 bytes of SHA-256 over the SPKI DER.
        var spki = ecdsa.ExportSubjectPublicKeyInfo();
        Assert.Equal(Base64Url(SHA256.HashData(spki)[..16]), signer.KeyId);
        Assert.Equal(22, signer.KeyId.Length);
        Assert.Equal(signer.KeyId, ReleaseSigner.KeyIdOf(signer.PublicKeyPem));

        using var other = ReleaseSigner.Generate();
        Assert.NotEqual(signer.KeyId, other.KeyId);
    }

    [Fact]
    public void Changing_any_single_byte_of_the_payload_fails_verification()
    {
        using var signer = ReleaseSigner.Generate();
        var signature = signer.Sign(SmallPayload);
        Assert.InRange(SmallPayload.Length, 20, 80);
        for (int i = 0; i < SmallPayload.Length; i++)
        {
            foreach (byte mask in new byte[] { 0x01, 0x80, 0xFF })
            {
                var changed = (byte[])SmallPayload.Clone();
                changed[i] ^= mask;
                Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, changed, signature), $"byte {i} ^ {mask:x2} still verifies");
            }
        }
        // Shorter and longer payloads too.
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload[..^1], signature));
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, [.. SmallPayload, (byte)' '], signature));
        Assert.True(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, signature));
    }

    [Fact]
    public void Changing_any_byte_or_character_of_the_signature_fails_verification()
    {
        using var signer = ReleaseSigner.Generate();
        var signature = signer.Sign(SmallPayload);
        var raw = FromBase64Url(signature);
        for (int i = 0; i < raw.Length; i++)
        {
            foreach (byte mask in new byte[] { 0x01, 0x80 })
            {
                var changed = (byte[])raw.Clone();
                changed[i] ^= mask;
                Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, Base64Url(changed)), $"signature byte {i} ^ {mask:x2} still verifies");
            }
        }
        // Every character of the text, including the last one whose low bits are padding: one spelling only.
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (int i = 0; i < signature.Length; i++)
        {
            foreach (var c in alphabet.Where(c => c != signature[i]).Where((_, n) => n % 5 == i % 5))
            {
                var changed = signature[..i] + c + signature[(i + 1)..];
                Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, changed), $"signature character {i} -> {c} still verifies");
            }
        }
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, signature + "=="));
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, Convert.ToBase64String(raw)));
    }

    [Fact]
    public void A_signature_does_not_verify_with_another_key()
    {
        using var signer = ReleaseSigner.Generate();
        using var other = ReleaseSigner.Generate();
        var signature = signer.Sign(SmallPayload);
        Assert.False(ReleaseSigner.Verify(other.PublicKeyPem, SmallPayload, signature));
        Assert.True(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, signature));
    }

    [Fact]
    public void Garbage_inputs_return_false_without_throwing()
    {
        using var signer = ReleaseSigner.Generate();
        var signature = signer.Sign(SmallPayload);
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var rsa = RSA.Create(2048);
        string[] badKeys =
        [
            null!, "", "garbage", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            signer.ExportPkcs8PrivateKeyPem(), // a private key is not a public key
            p384.ExportSubjectPublicKeyInfoPem(), rsa.ExportSubjectPublicKeyInfoPem(),
            signer.PublicKeyPem.Replace("PUBLIC KEY", "CERTIFICATE"),
            signer.PublicKeyPem[..40],
        ];
        foreach (var key in badKeys)
        {
            Assert.False(ReleaseSigner.Verify(key, SmallPayload, signature), $"key {key?[..Math.Min(key.Length, 30)]} verified");
            Assert.Null(ReleaseSigner.KeyIdOf(key!));
        }
        string[] badSignatures = [null!, "", "x", "not base64 at all!", new string('A', 86), new string('A', 85), new string('A', 88), signature[..85], signature + "A", " " + signature[1..], signature.Replace('-', '+').Replace('_', '/')];
        foreach (var s in badSignatures)
            if (s != signature) Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, SmallPayload, s), $"signature '{s}' verified");
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, null!, signature));
        Assert.False(ReleaseSigner.Verify(signer.PublicKeyPem, [], signature));
        // A P-384 signature of the right payload, with the P-384 key: not ES256, not accepted.
        var p384Sig = Base64Url(p384.SignData(SmallPayload, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.False(ReleaseSigner.Verify(p384.ExportSubjectPublicKeyInfoPem(), SmallPayload, p384Sig));
    }

    [Fact]
    public void Pkcs8_and_sec1_pem_keys_load_from_text_files_and_configuration()
    {
        using var dir = new TempDir("exchange-keys");
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicPem = ecdsa.ExportSubjectPublicKeyInfoPem();
        var pkcs8 = ecdsa.ExportPkcs8PrivateKeyPem();
        var sec1 = ecdsa.ExportECPrivateKeyPem();
        Assert.Contains("BEGIN " + "PRIVATE KEY", pkcs8);
        Assert.Contains("BEGIN EC " + "PRIVATE KEY", sec1);
        // As "openssl ecparam -name prime256v1 -genkey" writes it: the curve first, then the SEC1 key.
        var withParams = PemEncoding.WriteString("EC PARAMETERS", Convert.FromHexString("06082A8648CE3D030107")) + "\n" + sec1;
        File.WriteAllText(dir.File("pkcs8.pem"), pkcs8);
        File.WriteAllText(dir.File("sec1.pem"), withParams);

        var loaded = new List<ReleaseSigner>
        {
            ReleaseSigner.FromPem(pkcs8),
            ReleaseSigner.FromPem(sec1),
            ReleaseSigner.FromPem(withParams),
            ReleaseSigner.FromPemFile(dir.File("pkcs8.pem")),
            ReleaseSigner.FromPemFile(dir.File("sec1.pem")),
            // An environment variable with the line breaks written as \n.
            ReleaseSigner.Load(new ExchangeSigningOptions { KeyPem = pkcs8.Replace("\n", "\\n") }),
            ReleaseSigner.Load(new ExchangeSigningOptions { KeyFile = dir.File("sec1.pem") }),
        };
        foreach (var signer in loaded)
        {
            using (signer)
            {
                Assert.Equal(publicPem, signer.PublicKeyPem);
                Assert.Equal(ReleaseSigner.KeyIdOf(publicPem), signer.KeyId);
                Assert.True(ReleaseSigner.Verify(publicPem, SmallPayload, signer.Sign(SmallPayload)));
            }
        }

        // A generated key written out and loaded again is the same key.
        using var generated = ReleaseSigner.Generate();
        using var reloaded = ReleaseSigner.FromPem(generated.ExportPkcs8PrivateKeyPem());
        Assert.Equal(generated.KeyId, reloaded.KeyId);
    }

    [Fact]
    public void Unusable_keys_are_refused_with_a_reason()
    {
        using var dir = new TempDir("exchange-keys");
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var rsa = RSA.Create(2048);
        using var p256 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var encrypted = p256.ExportEncryptedPkcs8PrivateKeyPem("secret",
            new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 1000));

        Assert.Contains("P-256", Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem(p384.ExportPkcs8PrivateKeyPem())).Message);
        Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem(rsa.ExportPkcs8PrivateKeyPem()));
        Assert.Contains("RSA PRIVATE KEY", Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem(rsa.ExportRSAPrivateKeyPem())).Message);
        Assert.Contains("encrypted", Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem(encrypted)).Message);
        Assert.Contains("PUBLIC KEY", Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem(p256.ExportSubjectPublicKeyInfoPem())).Message);
        Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem("no pem here"));
        Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPem("-----BEGIN " + "PRIVATE KEY-----\nAAAA\n-----END " + "PRIVATE KEY-----\n"));
        Assert.Contains(dir.File("absent.pem"), Assert.Throws<SigningKeyException>(() => ReleaseSigner.FromPemFile(dir.File("absent.pem"))).Message);
        Assert.Throws<SigningKeyException>(() => ReleaseSigner.Load(new ExchangeSigningOptions()));
        Assert.Throws<SigningKeyException>(() => ReleaseSigner.Load(new ExchangeSigningOptions { KeyFile = "a.pem", KeyPem = p256.ExportPkcs8PrivateKeyPem() }));
    }
}
