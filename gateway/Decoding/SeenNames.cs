using System.Runtime.CompilerServices;

namespace CityGateway.Decoding;

/// <summary>The keys met so far in one JSON object or text line, to refuse a key given twice.
/// Up to 16 keys live on the stack.</summary>
public struct SeenNames
{
    private const int Inline = 16;
    private InlineNames _inline;
    private HashSet<string>? _more;
    private int _count;

    [InlineArray(Inline)]
    private struct InlineNames
    {
        private string _first;
    }

    public readonly int Count => _count + (_more?.Count ?? 0);

    /// <summary>False when <paramref name="name"/> was already added.</summary>
    public bool Add(string name)
    {
        for (int i = 0; i < _count; i++)
            if (ReferenceEquals(_inline[i], name) || _inline[i] == name) return false;
        if (_more is not null) return _more.Add(name);
        if (_count < Inline)
        {
            _inline[_count++] = name;
            return true;
        }
        _more = new HashSet<string>(StringComparer.Ordinal) { name };
        return true;
    }
}
