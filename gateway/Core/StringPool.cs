using System.Numerics;
using System.Text;
using System.Text.Json;

namespace CityGateway.Core;

/// <summary>
/// Strings for the names and identifiers that repeat in every message (field names, device ids,
/// tag values), found by their UTF-8 bytes so that decoding a known name allocates nothing and does
/// not even transcode it. Bounded: when it holds <see cref="Capacity"/> strings it starts over, so
/// input that never repeats costs one string per value, as it would without the pool. Lookups take
/// no lock; additions do.
/// </summary>
public sealed class StringPool
{
    private const int MaxPooledBytes = 128;

    /// <summary>The size of the process's pool, which the decoders, the journal and the MQTT source
    /// share: room for every device id and field name of a large city's fleet.</summary>
    public const int ProcessCapacity = 1 << 17;

    private sealed class Entry(byte[] utf8, string value, int hash)
    {
        public readonly byte[] Utf8 = utf8;
        public readonly string Value = value;
        public readonly int Hash = hash;
    }

    private readonly object _gate = new();
    private Entry?[] _slots;
    private int _count;

    public StringPool(int capacity)
    {
        Capacity = capacity;
        _slots = new Entry?[(int)BitOperations.RoundUpToPowerOf2((uint)capacity * 2)];
    }

    public int Capacity { get; }

    /// <summary>The string for UTF-8 bytes (invalid sequences become U+FFFD; the decoders' input is validated first).</summary>
    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length == 0) return "";
        if (utf8.Length > MaxPooledBytes) return Encoding.UTF8.GetString(utf8);
        int hash = Hash(utf8);
        var slots = Volatile.Read(ref _slots);
        int mask = slots.Length - 1;
        for (int i = hash & mask; ; i = (i + 1) & mask)
        {
            var e = slots[i];
            if (e is null) break;
            if (e.Hash == hash && utf8.SequenceEqual(e.Utf8)) return e.Value;
        }
        return Add(utf8, hash);
    }

    /// <summary>The string for <paramref name="chars"/> (topic levels).</summary>
    public string Get(ReadOnlySpan<char> chars)
    {
        if (chars.Length > MaxPooledBytes / 3) return new string(chars);
        Span<byte> utf8 = stackalloc byte[MaxPooledBytes];
        return Get(utf8[..Encoding.UTF8.GetBytes(chars, utf8)]);
    }

    /// <summary>The current string or property name token of <paramref name="reader"/>.</summary>
    public string Get(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped || reader.HasValueSequence ? reader.GetString()! : Get(reader.ValueSpan);

    private string Add(ReadOnlySpan<byte> utf8, int hash)
    {
        var entry = new Entry(utf8.ToArray(), Encoding.UTF8.GetString(utf8), hash);
        lock (_gate)
        {
            var slots = _slots;
            if (_count >= Capacity)
            {
                // Start over rather than grow: readers keep using the old table until they see the new one.
                slots = new Entry?[slots.Length];
                _count = 0;
            }
            int mask = slots.Length - 1;
            int i = hash & mask;
            while (slots[i] is { } e)
            {
                if (e.Hash == hash && utf8.SequenceEqual(e.Utf8)) return e.Value;
                i = (i + 1) & mask;
            }
            // The entry is complete before it becomes visible to readers.
            Volatile.Write(ref slots[i], entry);
            _count++;
            Volatile.Write(ref _slots, slots);
        }
        return entry.Value;
    }

    private static int Hash(ReadOnlySpan<byte> bytes)
    {
        var h = new HashCode();
        h.AddBytes(bytes);
        return h.ToHashCode() & int.MaxValue;
    }
}
