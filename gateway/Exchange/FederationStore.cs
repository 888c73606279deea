using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;

namespace CityGateway.Exchange;

/// <summary>A federation file of ours (state, trusted keys) that cannot be read: it is not the partner's
/// fault, and nothing is pulled from that partner until an operator fixes it.</summary>
public sealed class FederationStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Writes a file whole or not at all: a temporary file renamed over the old one.</summary>
internal static class AtomicFile
{
    public static void Write(string path, string text)
    {
        // Readable by the gateway's user only, like every other exchange file.
        PrivateFiles.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(text));
    }

    public static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FederationStoreException($"{path} is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new FederationStoreException($"{path} cannot be read: {e.Message}", e);
        }
    }
}

/// <summary>
/// What has been taken from one partner (federation/&lt;partner&gt;/state.json): the last accepted
/// sequence, from which the next cursor is made, and the ids (SHA-256 of the canonical payload) of
/// the releases accepted most recently, so a release served again is recognised.
/// </summary>
public sealed class PartnerFeedState
{
    /// <summary>Ids kept; older releases are still refused by their sequence.</summary>
    public const int MaxIds = 4096;

    private readonly string _path;
    private readonly LinkedList<string> _order = new();
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);

    private PartnerFeedState(string path) => _path = path;

    public long LastSequence { get; private set; }

    public string FilePath => _path;

    /// <summary>The cursor for the next page: "s" + the last accepted sequence, null before the first.</summary>
    public string? Cursor => LastSequence > 0 ? "s" + LastSequence.ToString(CultureInfo.InvariantCulture) : null;

    public bool Contains(string id) => _ids.Contains(id);

    /// <summary>Loads state.json; a folder from before it (a "cursor" file "sN") starts at N.</summary>
    public static PartnerFeedState Load(string folder)
    {
        var state = new PartnerFeedState(Path.Combine(folder, "state.json"));
        var json = AtomicFile.ReadObject(state._path);
        if (json is null)
        {
            var legacy = Path.Combine(folder, "cursor");
            if (File.Exists(legacy)
                && File.ReadAllText(legacy).Trim() is { Length: > 1 } c && c[0] == 's'
                && long.TryParse(c.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                state.LastSequence = n;
            return state;
        }
        try
        {
            state.LastSequence = json["lastSequence"]?.GetValue<long>() ?? 0;
            foreach (var id in json["accepted"]?.AsArray() ?? [])
                state.Remember(id!.GetValue<string>());
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new FederationStoreException($"{state._path} is not a federation state file: {e.Message}", e);
        }
        return state;
    }

    /// <summary>Records an accepted release and writes the file (atomically) before returning.</summary>
    public void Accept(long sequence, string id)
    {
        LastSequence = sequence;
        Remember(id);
        AtomicFile.Write(_path, new JsonObject
        {
            ["lastSequence"] = LastSequence,
            ["accepted"] = new JsonArray(_order.Select(i => (JsonNode)JsonValue.Create(i)).ToArray()),
        }.ToJsonString());
    }

    private void Remember(string id)
    {
        if (!_ids.Add(id)) return;
        _order.AddLast(id);
        while (_order.Count > MaxIds)
        {
            _ids.Remove(_order.First!.Value);
            _order.RemoveFirst();
        }
    }
}

/// <summary>One key a partner signs with that we trust, and how it came to be trusted.</summary>
public sealed record TrustedKey(string KeyId, string PublicKeyPem, string How, DateTimeOffset TrustedAt, string? ValidFrom = null);

/// <summary>
/// The partner's keys we verify releases with (federation/&lt;partner&gt;/trusted-keys.json). A key
/// gets here at first use, from configuration, through a rollover statement signed by a key already
/// here, or by an operator (<c>Gateway exchange trust-partner-key</c>). A single pinned
/// public-key.pem from before is migrated into it.
/// </summary>
public sealed class PartnerTrustedKeys
{
    public const string FileName = "trusted-keys.json";
    public const string LegacyPin = "public-key.pem";

    private readonly string _path;
    private readonly Dictionary<string, TrustedKey> _keys = new(StringComparer.Ordinal);

    private PartnerTrustedKeys(string path) => _path = path;

    public string FilePath => _path;
    public IReadOnlyCollection<TrustedKey> Keys => _keys.Values;
    public bool IsEmpty => _keys.Count == 0;

    public TrustedKey? Find(string keyId) => _keys.GetValueOrDefault(keyId);

    public static PartnerTrustedKeys Load(string folder)
    {
        var store = new PartnerTrustedKeys(Path.Combine(folder, FileName));
        var json = AtomicFile.ReadObject(store._path);
        if (json is not null)
        {
            try
            {
                foreach (var node in json["keys"]?.AsArray() ?? [])
                {
                    var pem = node!["publicKey"]!.GetValue<string>();
                    var id = ReleaseSigner.KeyIdOf(pem) ?? throw new FederationStoreException($"{store._path}: a key is not a P-256 public key PEM");
                    store._keys[id] = new TrustedKey(id, pem, node["how"]?.GetValue<string>() ?? "unknown",
                        DateTimeOffset.Parse(node["trustedAt"]?.GetValue<string>() ?? "2000-01-01T00:00:00Z", CultureInfo.InvariantCulture),
                        node["validFrom"]?.GetValue<string>());
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
            {
                throw new FederationStoreException($"{store._path} is not a trusted-keys file: {e.Message}", e);
            }
            return store;
        }
        var legacy = Path.Combine(folder, LegacyPin);
        if (File.Exists(legacy))
        {
            var pem = File.ReadAllText(legacy);
            var id = ReleaseSigner.KeyIdOf(pem) ?? throw new FederationStoreException($"{legacy} is not a P-256 public key PEM");
            store.Add(new TrustedKey(id, pem, "pinned at first use (migrated from public-key.pem)", File.GetLastWriteTimeUtc(legacy)));
            File.Move(legacy, legacy + ".migrated", overwrite: true);
        }
        return store;
    }

    /// <summary>Adds (or replaces) a key and writes the file atomically.</summary>
    public void Add(TrustedKey key)
    {
        _keys[key.KeyId] = key;
        Save();
    }

    /// <summary>Trusts a key for this poll without writing it down (the configured key: configuration
    /// decides it at every start, the file does not keep it after the setting is removed).</summary>
    public void TrustForThisRun(TrustedKey key) => _keys.TryAdd(key.KeyId, key);

    /// <summary>Drops every key but <paramref name="key"/> (an operator's re-pin after a compromise).</summary>
    public void ReplaceAll(TrustedKey key)
    {
        _keys.Clear();
        Add(key);
    }

    private void Save() => AtomicFile.Write(_path, new JsonObject
    {
        ["keys"] = new JsonArray(_keys.Values.OrderBy(k => k.TrustedAt).Select(k => (JsonNode)new JsonObject
        {
            ["keyId"] = k.KeyId, ["publicKey"] = k.PublicKeyPem, ["how"] = k.How,
            ["trustedAt"] = k.TrustedAt.ToString("O", CultureInfo.InvariantCulture), ["validFrom"] = k.ValidFrom,
        }).ToArray()),
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}

/// <summary>One value a partner released to us, as accepted (checked by the federation client).</summary>
public sealed record ReceivedValue(DateTimeOffset WindowStart, string District, string Domain, string Metric, string Aggregate, double Value);

/// <summary>
/// The values of the partner's releases we accepted (federation/&lt;partner&gt;/received.jsonl, one
/// line per release), kept so the transparency page can show "partner city" beside "our city"
/// without a database query. Bounded: once the file passes <see cref="MaxBytes"/> it is rewritten
/// with its newer half. Only values that passed the federation client's checks get here; readers
/// still treat every line as untrusted (a line that does not parse is skipped).
/// </summary>
public static class PartnerReleaseHistory
{
    public const string FileName = "received.jsonl";
    public const long MaxBytes = 4 << 20;

    public static string PathIn(string partnerFolder) => Path.Combine(partnerFolder, FileName);

    /// <summary>Appends one accepted release (window start and rows); trims the file when it is too large.</summary>
    public static void Append(string partnerFolder, long sequence, DateTimeOffset windowStart, IReadOnlyList<ReceivedValue> rows)
    {
        var path = PathIn(partnerFolder);
        var line = new JsonObject
        {
            ["sequence"] = sequence,
            ["windowStart"] = windowStart.ToUnixTimeSeconds(),
            ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
            {
                ["district"] = r.District, ["domain"] = r.Domain, ["metric"] = r.Metric, ["aggregate"] = r.Aggregate, ["value"] = r.Value,
            }).ToArray()),
        }.ToJsonString() + "\n";
        using (var fs = new FileStream(path, PrivateFiles.Options(FileMode.Append, FileAccess.Write, FileShare.Read)))
            fs.Write(System.Text.Encoding.UTF8.GetBytes(line));
        if (new FileInfo(path).Length > MaxBytes)
        {
            var lines = File.ReadAllLines(path);
            PrivateFiles.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(string.Join("\n", lines[(lines.Length / 2)..]) + "\n"));
        }
    }

    /// <summary>The values of releases whose window starts at or after <paramref name="since"/>, at most <paramref name="maxValues"/> (the newest).</summary>
    public static IReadOnlyList<ReceivedValue> Read(string partnerFolder, DateTimeOffset since, int maxValues)
    {
        var path = PathIn(partnerFolder);
        var values = new List<ReceivedValue>();
        if (!File.Exists(path)) return values;
        IEnumerable<string> lines;
        try { lines = File.ReadLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return values; }
        try
        {
            foreach (var text in lines)
            {
                if (text.Length == 0) continue;
                try
                {
                    if (JsonNode.Parse(text) is not JsonObject o || o["windowStart"] is not JsonValue ws || !ws.TryGetValue<long>(out var unix)) continue;
                    var start = DateTimeOffset.FromUnixTimeSeconds(unix);
                    if (start < since || o["rows"] is not JsonArray rows) continue;
                    foreach (var row in rows)
                    {
                        if (row is not JsonObject r) continue;
                        string? S(string name) => r[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
                        if (S("district") is not { } district || S("domain") is not { } domain || S("metric") is not { } metric || S("aggregate") is not { } aggregate) continue;
                        if (r["value"] is not JsonValue value || !value.TryGetValue<double>(out var d) || !double.IsFinite(d)) continue;
                        values.Add(new ReceivedValue(start, district, domain, metric, aggregate, d));
                    }
                }
                catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentOutOfRangeException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return values.Count > maxValues ? values[^maxValues..] : values;
    }
}
