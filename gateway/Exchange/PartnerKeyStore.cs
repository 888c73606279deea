using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CityGateway.Exchange;

/// <summary>A partner API key as stored: its hash only, never the key.</summary>
public sealed class PartnerKeyEntry
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("partner")] public string Partner { get; set; } = "";
    [JsonPropertyName("sha256")] public string Sha256 { get; set; } = "";
    [JsonPropertyName("created")] public DateTimeOffset Created { get; set; }
    [JsonPropertyName("revoked")] public DateTimeOffset? Revoked { get; set; }
}

public enum KeyCheck { Valid, Missing, Unknown, Revoked }

/// <summary>The partner key file cannot be read as a list of key entries.</summary>
public sealed class PartnerKeyFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Partner API keys: issued per partner, stored as SHA-256 hashes (the keys are 256 random bits,
/// so a plain hash is enough), compared in constant time, revocable. A key reads
/// "cgx.&lt;id&gt;.&lt;secret&gt;"; the id finds the entry, the whole key is hashed and compared.
/// The file is re-read when it changes, so a revocation by command applies without a restart.
/// </summary>
public sealed class PartnerKeyStore
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private readonly string _path;
    private readonly object _lock = new();
    private List<PartnerKeyEntry> _entries = [];
    private DateTime _loaded;

    public PartnerKeyStore(string path)
    {
        _path = Path.GetFullPath(path);
        Reload();
    }

    public string FilePath => _path;

    public IReadOnlyList<PartnerKeyEntry> Entries
    {
        get { lock (_lock) { ReloadIfChanged(); return _entries.ToList(); } }
    }

    public (string Key, PartnerKeyEntry Entry) Issue(string partner)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        var key = $"cgx.{id}.{secret}";
        var entry = new PartnerKeyEntry { Id = id, Partner = partner, Sha256 = Hash(key), Created = DateTimeOffset.UtcNow };
        lock (_lock)
        {
            ReloadIfChanged();
            _entries.Add(entry);
            Save();
        }
        return (key, entry);
    }

    public bool Revoke(string id)
    {
        lock (_lock)
        {
            ReloadIfChanged();
            var e = _entries.FirstOrDefault(x => x.Id == id);
            if (e is null) return false;
            e.Revoked ??= DateTimeOffset.UtcNow;
            Save();
            return true;
        }
    }

    public KeyCheck Check(string? presented, out PartnerKeyEntry? entry)
    {
        entry = null;
        if (string.IsNullOrEmpty(presented)) return KeyCheck.Missing;
        var parts = presented.Split('.');
        PartnerKeyEntry? candidate;
        lock (_lock)
        {
            ReloadIfChanged();
            candidate = parts.Length == 3 && parts[0] == "cgx" ? _entries.FirstOrDefault(x => x.Id == parts[1]) : null;
        }
        // Hash and compare even when the id is unknown, so timing does not tell ids apart.
        var expected = Convert.FromHexString(candidate?.Sha256 ?? new string('0', 64));
        var actual = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        if (!CryptographicOperations.FixedTimeEquals(expected, actual) || candidate is null) return KeyCheck.Unknown;
        entry = candidate;
        return candidate.Revoked is null ? KeyCheck.Valid : KeyCheck.Revoked;
    }

    private static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private void ReloadIfChanged()
    {
        if (File.Exists(_path) && File.GetLastWriteTimeUtc(_path) != _loaded) Reload();
    }

    private void Reload()
    {
        if (!File.Exists(_path)) { _entries = []; return; }
        try
        {
            _entries = JsonSerializer.Deserialize<List<PartnerKeyEntry>>(File.ReadAllBytes(_path)) ?? [];
            _loaded = File.GetLastWriteTimeUtc(_path);
        }
        catch (JsonException e)
        {
            throw new PartnerKeyFileException($"the partner key file '{_path}' is not valid JSON: {e.Message}", e);
        }
    }

    private void Save()
    {
        PrivateFiles.CreateFolder(Path.GetDirectoryName(_path)!);
        // Created 0600 from the start (never readable by others, not even before a chmod).
        PrivateFiles.WriteAtomically(_path, JsonSerializer.SerializeToUtf8Bytes(_entries, Json));
        _loaded = File.GetLastWriteTimeUtc(_path);
    }
}
