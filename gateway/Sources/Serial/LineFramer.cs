namespace CityGateway.Sources.Serial;

/// <summary>
/// Cuts a byte stream into lines at '\n' (a trailing '\r' is dropped). Lines can span reads. A
/// line longer than the bound is reported once as over-long with its first bytes, and the framer
/// skips to the next '\n': noise without delimiters never derails the lines after it.
/// </summary>
public sealed class LineFramer(int maxLineBytes)
{
    private readonly byte[] _line = new byte[maxLineBytes];
    private int _length;
    private bool _overlong;
    private long _overlongBytes;

    public delegate void LineHandler(ReadOnlySpan<byte> line, bool overlong, long length);

    public void Push(ReadOnlySpan<byte> data, LineHandler onLine)
    {
        while (data.Length > 0)
        {
            int nl = data.IndexOf((byte)'\n');
            var chunk = nl < 0 ? data : data[..nl];
            Append(chunk);
            if (nl < 0) return;
            Emit(onLine);
            data = data[(nl + 1)..];
        }
    }

    private void Append(ReadOnlySpan<byte> chunk)
    {
        if (_overlong)
        {
            _overlongBytes += chunk.Length;
            return;
        }
        int room = _line.Length - _length;
        if (chunk.Length <= room)
        {
            chunk.CopyTo(_line.AsSpan(_length));
            _length += chunk.Length;
            return;
        }
        chunk[..room].CopyTo(_line.AsSpan(_length));
        _length = _line.Length;
        _overlong = true;
        _overlongBytes = _length + (chunk.Length - room);
    }

    private void Emit(LineHandler onLine)
    {
        if (_overlong)
        {
            onLine(_line.AsSpan(0, _length), true, _overlongBytes);
        }
        else
        {
            int len = _length;
            if (len > 0 && _line[len - 1] == (byte)'\r') len--;
            if (len > 0) onLine(_line.AsSpan(0, len), false, len);
        }
        _length = 0;
        _overlong = false;
        _overlongBytes = 0;
    }

    /// <summary>Forgets a partial line (the port was reopened: what came before is not continued).</summary>
    public void Reset()
    {
        _length = 0;
        _overlong = false;
        _overlongBytes = 0;
    }
}
