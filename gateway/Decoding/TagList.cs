using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace CityGateway.Decoding;

/// <summary>
/// The tags of one message (lane, vehicleType) while it is decoded, without a heap allocation for
/// the usual handful. <see cref="ToShared"/> gives the array the message's readings carry; equal tag
/// sets share one array, so a message whose tags were seen before allocates nothing.
/// </summary>
public struct TagList
{
    private const int Inline = 4;
    private static readonly TagSetPool Pool = new(100_000);

    private InlineTags _inline;
    private List<KeyValuePair<string, string?>>? _more;
    private int _count;

    [InlineArray(Inline)]
    private struct InlineTags
    {
        private KeyValuePair<string, string?> _first;
    }

    /// <summary>Records a tag key; a null value marks a key that was present with no value.</summary>
    public void Add(string key, string? value)
    {
        if (_count < Inline) _inline[_count] = new(key, value);
        else (_more ??= []).Add(new(key, value));
        _count++;
    }

    public readonly bool Contains(string key)
    {
        for (int i = 0; i < _count; i++)
            if (At(i).Key == key) return true;
        return false;
    }

    private readonly KeyValuePair<string, string?> At(int i) => i < Inline ? _inline[i] : _more![i - Inline];

    /// <summary>The tags with a value, as a shared array; null when there are none.</summary>
    public readonly KeyValuePair<string, string>[]? ToShared()
    {
        if (_count > Inline) return Collect();
        // A small struct copy, then a lookup by content: no array unless this tag set is new.
        var probe = new InlineSet();
        int n = 0;
        for (int i = 0; i < _count; i++)
            if (_inline[i].Value is { } v) probe[n++] = new(_inline[i].Key, v);
        return n == 0 ? null : Pool.Get(((ReadOnlySpan<KeyValuePair<string, string>>)probe)[..n]);
    }

    [InlineArray(Inline)]
    private struct InlineSet
    {
        private KeyValuePair<string, string> _first;
    }

    private readonly KeyValuePair<string, string>[]? Collect()
    {
        var list = new List<KeyValuePair<string, string>>(_count);
        for (int i = 0; i < _count; i++)
            if (At(i).Value is { } v) list.Add(new(At(i).Key, v));
        return list.Count == 0 ? null : Pool.Get(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list));
    }

    private sealed class TagSetPool(int capacity)
    {
        private readonly ConcurrentDictionary<KeyValuePair<string, string>[], KeyValuePair<string, string>[]> _sets = new(TagSetComparer.Instance);
        private int _count;

        public KeyValuePair<string, string>[] Get(ReadOnlySpan<KeyValuePair<string, string>> tags)
        {
            var lookup = _sets.GetAlternateLookup<ReadOnlySpan<KeyValuePair<string, string>>>();
            if (lookup.TryGetValue(tags, out var shared)) return shared;
            var array = tags.ToArray();
            if (Interlocked.Increment(ref _count) > capacity)
            {
                _sets.Clear();
                Interlocked.Exchange(ref _count, 1);
            }
            return _sets.GetOrAdd(array, array);
        }
    }
}

/// <summary>Tag sets compared by content (keys and values, in order).</summary>
internal sealed class TagSetComparer : IEqualityComparer<KeyValuePair<string, string>[]>,
    IAlternateEqualityComparer<ReadOnlySpan<KeyValuePair<string, string>>, KeyValuePair<string, string>[]>
{
    public static readonly TagSetComparer Instance = new();

    public bool Equals(KeyValuePair<string, string>[]? x, KeyValuePair<string, string>[]? y) =>
        ReferenceEquals(x, y) || (x is not null && y is not null && Equals((ReadOnlySpan<KeyValuePair<string, string>>)x, y));

    public int GetHashCode(KeyValuePair<string, string>[] obj) => GetHashCode((ReadOnlySpan<KeyValuePair<string, string>>)obj);

    public bool Equals(ReadOnlySpan<KeyValuePair<string, string>> alternate, KeyValuePair<string, string>[] other)
    {
        if (alternate.Length != other.Length) return false;
        for (int i = 0; i < alternate.Length; i++)
            if (!string.Equals(alternate[i].Key, other[i].Key, StringComparison.Ordinal) ||
                !string.Equals(alternate[i].Value, other[i].Value, StringComparison.Ordinal)) return false;
        return true;
    }

    public int GetHashCode(ReadOnlySpan<KeyValuePair<string, string>> alternate)
    {
        var hash = new HashCode();
        foreach (var t in alternate)
        {
            hash.Add(t.Key, StringComparer.Ordinal);
            hash.Add(t.Value, StringComparer.Ordinal);
        }
        return hash.ToHashCode();
    }

    public KeyValuePair<string, string>[] Create(ReadOnlySpan<KeyValuePair<string, string>> alternate) => alternate.ToArray();
}
