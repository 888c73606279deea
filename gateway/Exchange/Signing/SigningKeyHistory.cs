using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CityGateway.Exchange.Signing;

/// <summary>The key history file cannot be read, or a rotation cannot be made; the message says why.</summary>
public sealed class SigningKeyHistoryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One key the city has signed with: public key only, and when it was (or is) in use.</summary>
public sealed record SigningKeyRecord(string KeyId, string PublicKey, DateTimeOffset ValidFrom, DateTimeOffset? ValidUntil);

/// <summary>
/// Every signing key the city has used, oldest first, and the rollover statements between them,
/// kept in <c>signing-keys.json</c> in the exchange's data folder (public keys only, never a
/// private key). The last key is the current one (no <c>validUntil</c>); each rotation closes the
/// previous key and adds a statement signed by the previous key:
/// <code>
/// { "type": "key-rollover", "city": "&lt;cityId&gt;", "previousKeyId": "...", "newKeyId": "...",
///   "newPublicKey": "&lt;PEM&gt;", "validFrom": "&lt;ISO-8601&gt;" }
/// </code>
/// in a <see cref="SignedDocument"/> envelope. The well-known document publishes both, so a partner
/// that trusted the old key can move to the new one, and releases signed before a rotation still
/// verify against the key their signature names.
/// </summary>
public sealed class SigningKeyHistory
{
    public const string FileName = "signing-keys.json";
    public const string RolloverType = "key-rollover";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly List<SigningKeyRecord> _keys;
    private readonly List<JsonObject> _rollovers;

    private SigningKeyHistory(string path, string? city, List<SigningKeyRecord> keys, List<JsonObject> rollovers)
    {
        FilePath = path;
        City = city;
        _keys = keys;
        _rollovers = rollovers;
    }

    public string FilePath { get; }

    /// <summary>The city the history belongs to (recorded at its first entry).</summary>
    public string? City { get; private set; }

    public IReadOnlyList<SigningKeyRecord> Keys => _keys;

    public IReadOnlyList<JsonObject> Rollovers => _rollovers;

    /// <summary>The key the city signs with now: the newest, or null when the history is empty.</summary>
    public SigningKeyRecord? Current => _keys.Count > 0 ? _keys[^1] : null;

    /// <summary>The public key (PEM) of a key the city has signed with, or null.</summary>
    public string? PublicKeyOf(string keyId) => _keys.FirstOrDefault(k => k.KeyId == keyId)?.PublicKey;

    /// <summary>ISO 8601 in UTC to the second, as the history and the well-known document write times.</summary>
    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ToSecond(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    /// <summary>The history in <paramref name="dataPath"/>; empty when there is none yet.</summary>
    public static SigningKeyHistory Load(string dataPath)
    {
        var path = Path.GetFullPath(Path.Combine(dataPath, FileName));
        if (!File.Exists(path)) return new SigningKeyHistory(path, null, [], []);
        JsonObject? root;
        try { root = JsonNode.Parse(File.ReadAllBytes(path)) as JsonObject; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new SigningKeyHistoryException($"the signing key history {path} cannot be read: {e.Message}", e);
        }
        if (root is null) throw new SigningKeyHistoryException($"the signing key history {path} is not a JSON object");
        var keys = new List<SigningKeyRecord>();
        var rollovers = new List<JsonObject>();
        string Text(JsonNode? node, string member) =>
            node is JsonObject o && o[member] is JsonValue v && v.TryGetValue<string>(out var text) ? text
                : throw new SigningKeyHistoryException($"the signing key history {path} is malformed: a key has no \"{member}\" text");
        DateTimeOffset Time(string text) =>
            DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t
                : throw new SigningKeyHistoryException($"the signing key history {path} is malformed: '{text}' is not an ISO 8601 time");
        if (root["keys"] is not JsonArray keyArray || root["rollovers"] is not (JsonArray or null))
            throw new SigningKeyHistoryException($"the signing key history {path} is malformed: \"keys\" must be an array, \"rollovers\" an array");
        foreach (var node in keyArray)
        {
            var keyId = Text(node, "keyId");
            var pem = Text(node, "publicKey");
            if (ReleaseSigner.KeyIdOf(pem) != keyId) throw new SigningKeyHistoryException($"the signing key history {path}: key {keyId} does not match its public key");
            var from = Time(Text(node, "validFrom"));
            DateTimeOffset? until = node!["validUntil"] is null ? null : Time(Text(node, "validUntil"));
            keys.Add(new SigningKeyRecord(keyId, pem, from, until));
        }
        foreach (var node in root["rollovers"] as JsonArray ?? [])
            rollovers.Add(node as JsonObject is { } statement ? (JsonObject)statement.DeepClone()
                : throw new SigningKeyHistoryException($"the signing key history {path} is malformed: a rollover is not an object"));
        for (int i = 0; i < keys.Count - 1; i++)
            if (keys[i].ValidUntil is null) throw new SigningKeyHistoryException($"the signing key history {path}: key {keys[i].KeyId} is not the newest but has no validUntil");
        if (keys.Count > 0 && keys[^1].ValidUntil is not null)
            throw new SigningKeyHistoryException($"the signing key history {path}: the newest key {keys[^1].KeyId} has a validUntil; no key is current");
        if (keys.Select(k => k.KeyId).Distinct().Count() != keys.Count) throw new SigningKeyHistoryException($"the signing key history {path} names a key twice");
        var city = root["city"] is JsonValue c && c.TryGetValue<string>(out var cityText) ? cityText : null;
        return new SigningKeyHistory(path, city, keys, rollovers);
    }

    /// <summary>
    /// Null when <paramref name="signer"/> may sign: there is no history yet, or it is the newest key
    /// in it. Otherwise the start-up error, naming the setting that holds the key.
    /// </summary>
    public static string? CheckConfigured(string dataPath, ReleaseSigner signer, ExchangeSigningOptions options)
    {
        var history = Load(dataPath);
        if (history.Current is not { } current || current.KeyId == signer.KeyId) return null;
        var setting = ExchangeSigningOptions.Section + (string.IsNullOrWhiteSpace(options.KeyFile) ? ":KeyPem" : ":KeyFile");
        var retired = history.Keys.FirstOrDefault(k => k.KeyId == signer.KeyId);
        var what = retired is not null
            ? $"names the retired signing key {signer.KeyId} (in use until {Iso(retired.ValidUntil!.Value)})"
            : $"names signing key {signer.KeyId}, which is not in the city's key history";
        return $"{setting}: {what}; the current key is {current.KeyId} (since {Iso(current.ValidFrom)}, {history.FilePath}). " +
               "Point it at the newest key, or rotate to a new key with 'Gateway exchange rotate-key --current OLD.pem --new NEW.pem'.";
    }

    /// <summary>
    /// Records <paramref name="signer"/> as the first key when the history is empty (a city that
    /// signed before histories existed: <paramref name="firstValidFrom"/> is when it began);
    /// otherwise checks it is the current key.
    /// </summary>
    public void EnsureCurrent(ReleaseSigner signer, string cityId, DateTimeOffset firstValidFrom)
    {
        if (Current is { } current)
        {
            if (current.KeyId != signer.KeyId)
                throw new SigningKeyException($"the configured signing key {signer.KeyId} is not the current key {current.KeyId} of {FilePath}");
            return;
        }
        City ??= cityId;
        _keys.Add(new SigningKeyRecord(signer.KeyId, signer.PublicKeyPem, ToSecond(firstValidFrom), null));
        Save();
    }

    /// <summary>
    /// Moves the city from <paramref name="current"/> to <paramref name="next"/> at <paramref name="now"/>:
    /// closes the current key, adds the new one and the rollover statement signed by the current key.
    /// </summary>
    /// <returns>The rollover statement.</returns>
    public JsonObject Rotate(ReleaseSigner current, ReleaseSigner next, string? cityId, DateTimeOffset now, DateTimeOffset firstValidFrom)
    {
        var city = City ?? cityId;
        if (string.IsNullOrWhiteSpace(city))
            throw new SigningKeyHistoryException($"{FilePath} does not say which city it belongs to yet: give --city ID (Gateway:Exchange:CityId)");
        if (cityId is not null && City is not null && cityId != City)
            throw new SigningKeyHistoryException($"{FilePath} belongs to city '{City}', not '{cityId}'");
        if (current.KeyId == next.KeyId) throw new SigningKeyHistoryException("--current and --new are the same key");
        if (_keys.Any(k => k.KeyId == next.KeyId))
            throw new SigningKeyHistoryException($"the new key {next.KeyId} has been used by this city before; a key is never used again, make a new one with 'Gateway exchange keygen'");
        var at = ToSecond(now);
        if (Current is null) _keys.Add(new SigningKeyRecord(current.KeyId, current.PublicKeyPem, ToSecond(firstValidFrom < at ? firstValidFrom : at), null));
        else if (Current.KeyId != current.KeyId)
            throw new SigningKeyHistoryException($"--current is key {current.KeyId}, but the city's current key is {Current.KeyId} ({FilePath}); give the key the gateway signs with now");
        var previous = _keys[^1];
        if (at <= previous.ValidFrom) at = previous.ValidFrom.AddSeconds(1);
        _keys[^1] = previous with { ValidUntil = at };
        _keys.Add(new SigningKeyRecord(next.KeyId, next.PublicKeyPem, at, null));
        var statement = SignedDocument.Create(new JsonObject
        {
            ["type"] = RolloverType,
            ["city"] = city,
            ["previousKeyId"] = current.KeyId,
            ["newKeyId"] = next.KeyId,
            ["newPublicKey"] = next.PublicKeyPem,
            ["validFrom"] = Iso(at),
        }, current);
        _rollovers.Add(statement);
        City = city;
        Save();
        return statement;
    }

    private void Save()
    {
        var root = new JsonObject
        {
            ["city"] = City,
            ["keys"] = new JsonArray(_keys.Select(k => (JsonNode)new JsonObject
            {
                ["keyId"] = k.KeyId,
                ["publicKey"] = k.PublicKey,
                ["validFrom"] = Iso(k.ValidFrom),
                ["validUntil"] = k.ValidUntil is { } u ? Iso(u) : null,
            }).ToArray()),
            ["rollovers"] = new JsonArray(_rollovers.Select(r => (JsonNode)r.DeepClone()).ToArray()),
        };
        PrivateFiles.CreateFolder(Path.GetDirectoryName(FilePath)!);
        PrivateFiles.WriteAtomically(FilePath, JsonSerializer.SerializeToUtf8Bytes(root, Indented));
    }

    /// <summary>When the city began signing, as far as its data folder tells: its oldest stored release, else <paramref name="now"/>.</summary>
    public static DateTimeOffset FirstUse(string dataPath, DateTimeOffset now)
    {
        var releases = Path.Combine(dataPath, "releases");
        if (!Directory.Exists(releases)) return now;
        var oldest = now;
        foreach (var file in Directory.EnumerateFiles(releases, "*.json", SearchOption.AllDirectories))
        {
            var written = new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero);
            if (written < oldest) oldest = written;
        }
        return oldest;
    }
}
