using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;

namespace CityGateway.Tests.ExchangeTrust;

/// <summary>A clock the tests move by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}

internal static class AuditTestLogs
{
    public static readonly DateTimeOffset Start = new(2025, 6, 1, 8, 0, 0, TimeSpan.Zero);

    /// <summary>Entry data with the things that make byte flips interesting: escapes, non-ASCII, exponents, nesting.</summary>
    public static (string Kind, JsonObject Data) Entry(int i) => (i % 3) switch
    {
        0 => ("release", new JsonObject
        {
            ["partner"] = i % 2 == 0 ? "ghent" : "lyon",
            ["release"] = $"rel-{i:D4}",
            ["rows"] = 100 + i,
            ["epsilon"] = 0.25,
            ["note"] = "Zürich \"Süd\"\t\\ €",
            ["scale"] = 1e21,
        }),
        1 => ("pull", new JsonObject { ["partner"] = i % 2 == 0 ? "ghent" : "lyon", ["release"] = $"rel-{i - 1:D4}", ["bytes"] = 1.5e-7 * i }),
        _ => ("key-rotation", new JsonObject { ["keyId"] = "k" + i, ["tags"] = new JsonArray("a", 2, null, true) }),
    };

    /// <summary>A log of <paramref name="count"/> entries, one second apart.</summary>
    public static string Write(string path, int count)
    {
        var clock = new ManualClock(Start);
        using var log = new AuditLog(path, clock);
        for (int i = 0; i < count; i++)
        {
            var (kind, data) = Entry(i);
            log.Append(kind, data);
            clock.Now += TimeSpan.FromSeconds(1);
        }
        return path;
    }

    public static List<byte[]> Lines(byte[] file)
    {
        var lines = new List<byte[]>();
        int start = 0;
        for (int i = 0; i < file.Length; i++)
        {
            if (file[i] != (byte)'\n') continue;
            lines.Add(file[start..(i + 1)]); // with its "\n"
            start = i + 1;
        }
        if (start < file.Length) lines.Add(file[start..]);
        return lines;
    }

    /// <summary>The hash of a line computed independently of the log: SHA-256 of JCS of the entry without "hash".</summary>
    public static string HashOf(JsonObject entry)
    {
        var copy = entry.DeepClone().AsObject();
        copy.Remove("hash");
        return Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(copy)));
    }

    /// <summary>The line as the gateway writes it, for forging entries in tests.</summary>
    public static byte[] LineOf(JsonObject entry) => Encoding.UTF8.GetBytes(
        "{\"seq\":" + (long)entry["seq"]! + ",\"time\":" + CanonicalJson.SerializeToString(entry["time"]!.DeepClone())
        + ",\"kind\":" + CanonicalJson.SerializeToString(entry["kind"]!.DeepClone())
        + ",\"data\":" + CanonicalJson.SerializeToString(entry["data"]!.DeepClone())
        + ",\"prev\":\"" + (string)entry["prev"]! + "\",\"hash\":\"" + (string)entry["hash"]! + "\"}\n");
}
