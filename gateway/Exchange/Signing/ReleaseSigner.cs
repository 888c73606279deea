using System.Security.Cryptography;
using System.Text;

namespace CityGateway.Exchange.Signing;

/// <summary>A signing key that cannot be used: unreadable, not PEM, not a P-256 private key, encrypted.</summary>
public sealed class SigningKeyException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Where the gateway's release signing key comes from (section <c>Gateway:Exchange:Signing</c>).</summary>
/// <remarks>
/// Exactly one of the two is set. <see cref="KeyFile"/> names a PEM file (as written by
/// <c>Gateway exchange keygen</c>); <see cref="KeyPem"/> holds the PEM text itself, typically from
/// the environment variable <c>Gateway__Exchange__Signing__KeyPem</c>. In an environment variable the
/// line breaks of the PEM may be written as the two characters <c>\n</c>.
/// </remarks>
public sealed class ExchangeSigningOptions
{
    public const string Section = "Gateway:Exchange:Signing";
    public string? KeyFile { get; set; }
    public string? KeyPem { get; set; }
}

/// <summary>
/// The city's release signing key: ECDSA on NIST P-256 with SHA-256 (JWS "ES256").
/// </summary>
/// <remarks>
/// <para>Signatures are IEEE P1363 (r‖s, 64 bytes), base64url without padding: the JWS form.
/// Verification accepts only that exact encoding (decoding it again must give the same text), so
/// no second spelling of a signature verifies.</para>
/// <para>The key id is the base64url (no padding) of the first 16 bytes of SHA-256 over the public
/// key's SubjectPublicKeyInfo DER: 22 characters, the same for anyone who holds the public key.</para>
/// <para>ECDSA signatures are randomised and malleable ((r, s) and (r, n−s) both verify), so a
/// signature value identifies nothing; identify a release by its payload.</para>
/// </remarks>
public sealed class ReleaseSigner : IDisposable
{
    public const string Algorithm = "ES256";
    private const string P256Oid = "1.2.840.10045.3.1.7";
    private const int SignatureBytes = 64;
    private readonly ECDsa _key;

    private ReleaseSigner(ECDsa key)
    {
        _key = key;
        var spki = key.ExportSubjectPublicKeyInfo();
        PublicKeyPem = PemEncoding.WriteString("PUBLIC KEY", spki);
        KeyId = KeyIdOfSpki(spki);
    }

    /// <summary>The public key, PEM "PUBLIC KEY" (SubjectPublicKeyInfo), to hand to partners.</summary>
    public string PublicKeyPem { get; }

    /// <summary>base64url of the first 16 bytes of SHA-256(SubjectPublicKeyInfo DER).</summary>
    public string KeyId { get; }

    /// <summary>A new random P-256 key.</summary>
    public static ReleaseSigner Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Loads a key from a PEM file: PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY".</summary>
    public static ReleaseSigner FromPemFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SigningKeyException($"Cannot read the signing key file {path}: {e.Message}", e);
        }
        return FromPem(text, $"signing key file {path}");
    }

    /// <summary>Loads a key from PEM text: PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY".</summary>
    public static ReleaseSigner FromPem(string pem) => FromPem(pem, "signing key");

    /// <summary>Loads the key the options name; exactly one of file and PEM text must be set.</summary>
    public static ReleaseSigner Load(ExchangeSigningOptions options)
    {
        bool hasFile = !string.IsNullOrWhiteSpace(options.KeyFile);
        bool hasPem = !string.IsNullOrWhiteSpace(options.KeyPem);
        if (hasFile == hasPem)
            throw new SigningKeyException($"Set exactly one of {ExchangeSigningOptions.Section}:KeyFile and {ExchangeSigningOptions.Section}:KeyPem.");
        return hasFile ? FromPemFile(options.KeyFile!) : FromPem(options.KeyPem!, $"{ExchangeSigningOptions.Section}:KeyPem");
    }

    private static ReleaseSigner FromPem(string pem, string what)
    {
        ArgumentNullException.ThrowIfNull(pem);
        // Environment variables often carry PEM with its line breaks written as "\n".
        if (!pem.Contains('\n') && pem.Contains("\\n", StringComparison.Ordinal)) pem = pem.Replace("\\n", "\n", StringComparison.Ordinal);

        var remaining = pem.AsSpan();
        while (PemEncoding.TryFind(remaining, out var fields))
        {
            var label = remaining[fields.Label].ToString();
            var base64 = remaining[fields.Base64Data];
            remaining = remaining[fields.Location.End..];
            switch (label)
            {
                case "EC PARAMETERS":
                    continue; // "openssl ecparam -genkey" writes the curve first; the key names it again.
                case "ENCRYPTED PRIVATE KEY":
                    throw new SigningKeyException($"The {what} is encrypted; give the gateway an unencrypted PKCS#8 or SEC1 key (file mode 0600).");
                case "PRIVATE KEY":
                case "EC PRIVATE KEY":
                {
                    var der = new byte[fields.DecodedDataLength];
                    if (!Convert.TryFromBase64Chars(base64, der, out int written) || written != der.Length)
                        throw new SigningKeyException($"The {what} is not valid base64 inside its PEM armour.");
                    var key = ECDsa.Create();
                    try
                    {
                        int read;
                        if (label == "PRIVATE KEY") key.ImportPkcs8PrivateKey(der, out read);
                        else key.ImportECPrivateKey(der, out read);
                        if (read != der.Length)
                            throw new SigningKeyException($"The {what} has trailing data after the key.");
                        var curve = key.ExportParameters(includePrivateParameters: false).Curve;
                        if (!curve.IsNamed || curve.Oid.Value != P256Oid)
                            throw new SigningKeyException($"The {what} is on curve {curve.Oid.FriendlyName ?? curve.Oid.Value ?? "(explicit)"}; releases are signed with P-256.");
                        return new ReleaseSigner(key);
                    }
                    catch (CryptographicException e)
                    {
                        key.Dispose();
                        throw new SigningKeyException($"The {what} is not an EC private key: {e.Message}", e);
                    }
                    catch
                    {
                        key.Dispose();
                        throw;
                    }
                }
                default:
                    throw new SigningKeyException($"The {what} holds a PEM \"{label}\"; expected \"PRIVATE KEY\" (PKCS#8) or \"EC PRIVATE KEY\" (SEC1).");
            }
        }
        throw new SigningKeyException($"The {what} holds no PEM private key.");
    }

    /// <summary>The private key as PKCS#8 PEM ("PRIVATE KEY"), for writing a key file.</summary>
    public string ExportPkcs8PrivateKeyPem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>Signs bytes (normally <see cref="CanonicalJson.Serialize(System.Text.Json.Nodes.JsonNode?)"/> output); base64url r‖s.</summary>
    public string Sign(byte[] canonicalBytes)
    {
        ArgumentNullException.ThrowIfNull(canonicalBytes);
        var signature = _key.SignData(canonicalBytes, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return Base64UrlEncode(signature);
    }

    /// <summary>
    /// True when <paramref name="signature"/> is a valid ES256 signature of <paramref name="canonicalBytes"/>
    /// by the P-256 key in <paramref name="publicKeyPem"/> ("PUBLIC KEY" PEM). Any bad input — null,
    /// not PEM, another curve, a malformed signature — gives false; this never throws.
    /// </summary>
    public static bool Verify(string publicKeyPem, byte[] canonicalBytes, string signature)
    {
        try
        {
            if (publicKeyPem is null || canonicalBytes is null || signature is null) return false;
            if (!TryDecodeSignature(signature, out var raw)) return false;
            using var key = TryImportPublicKey(publicKeyPem, out _);
            return key is not null && key.VerifyData(canonicalBytes, raw, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (Exception)
        {
            return false; // the contract: bad input is "not verified", never an exception
        }
    }

    /// <summary>The key id of a "PUBLIC KEY" PEM (P-256), or null when it is not one.</summary>
    public static string? KeyIdOf(string publicKeyPem)
    {
        try
        {
            using var key = TryImportPublicKey(publicKeyPem, out var spki);
            return key is null ? null : KeyIdOfSpki(spki!);
        }
        catch (Exception)
        {
            return null;
        }
    }

    private static ECDsa? TryImportPublicKey(string? pem, out byte[]? spki)
    {
        spki = null;
        if (string.IsNullOrEmpty(pem) || !PemEncoding.TryFind(pem, out var fields)) return null;
        if (!pem.AsSpan()[fields.Label].SequenceEqual("PUBLIC KEY")) return null;
        var der = new byte[fields.DecodedDataLength];
        if (!Convert.TryFromBase64Chars(pem.AsSpan()[fields.Base64Data], der, out int written) || written != der.Length) return null;
        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(der, out int read);
            var curve = key.ExportParameters(includePrivateParameters: false).Curve;
            if (read != der.Length || !curve.IsNamed || curve.Oid.Value != P256Oid)
            {
                key.Dispose();
                return null;
            }
            spki = der;
            return key;
        }
        catch (CryptographicException)
        {
            key.Dispose();
            return null;
        }
    }

    private static string KeyIdOfSpki(byte[] spki) => Base64UrlEncode(SHA256.HashData(spki).AsSpan(0, 16));

    private static bool TryDecodeSignature(string text, out byte[] raw)
    {
        raw = [];
        // 64 bytes are 86 base64url characters; anything else, or a non-canonical spelling of the
        // last character, is not a signature this gateway wrote.
        if (text.Length != 86) return false;
        foreach (char c in text)
            if (!(c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_')) return false;
        var bytes = Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/') + "==");
        if (bytes.Length != SignatureBytes || Base64UrlEncode(bytes) != text) return false;
        raw = bytes;
        return true;
    }

    internal static string Base64UrlEncode(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose() => _key.Dispose();
}
