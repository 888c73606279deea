using System.Buffers;
using System.Collections.Concurrent;
using CityGateway.Core;

namespace CityGateway.Storage.Influx;

/// <summary>A block of line-protocol text; <see cref="LineArena"/> hands them out and takes them back.</summary>
public sealed class LineChunk
{
    internal LineChunk(LineArena arena, int size)
    {
        Arena = arena;
        Bytes = new byte[size];
    }

    internal LineArena Arena { get; }
    internal byte[] Bytes { get; }
    internal int Used;
    /// <summary>Order in which the chunk was opened; later lines are in chunks with higher ids.</summary>
    internal long Id;
}

/// <summary>One point as line protocol (newline included), with what the writer needs if InfluxDB refuses it.</summary>
public readonly struct EncodedPoint
{
    private readonly int _offset;
    private readonly int _length;

    internal EncodedPoint(LineChunk chunk, int offset, int length, string? origin, string? device)
    {
        Chunk = chunk;
        _offset = offset;
        _length = length;
        Origin = origin;
        Device = device;
    }

    public LineChunk? Chunk { get; }
    public ReadOnlySpan<byte> Line => Chunk is null ? default : Chunk.Bytes.AsSpan(_offset, _length);
    public string? Origin { get; }
    public string? Device { get; }
}

/// <summary>
/// Line-protocol text of points between the stage that encodes them and the writer, in 64 KiB
/// chunks that are reused once written: encoding a point allocates nothing in steady state. One
/// thread appends; the writer, which takes lines in the order they were appended, releases them
/// after InfluxDB has taken (or refused) their batch.
/// </summary>
public sealed class LineArena
{
    private const int ChunkBytes = 64 * 1024;
    private const int MaxFreeChunks = 256;

    private readonly ConcurrentQueue<LineChunk> _free = new();
    private readonly ConcurrentQueue<LineChunk> _filled = new();
    private readonly ArrayBufferWriter<byte> _scratch = new(1024);
    private LineChunk? _open;
    private long _nextId;
    private int _freeCount;

    /// <summary>Encodes <paramref name="point"/>. Only one thread may append.</summary>
    public EncodedPoint Append(Point point)
    {
        _scratch.ResetWrittenCount();
        LineProtocol.Write(_scratch, point);
        var line = _scratch.WrittenSpan;
        if (_open is null || _open.Bytes.Length - _open.Used < line.Length)
        {
            if (_open is not null) _filled.Enqueue(_open);
            _open = Open(line.Length);
        }
        int offset = _open.Used;
        line.CopyTo(_open.Bytes.AsSpan(offset));
        _open.Used += line.Length;
        return new EncodedPoint(_open, offset, line.Length, point.Origin, point.Tag("device"));
    }

    /// <summary>Every line appended before the first line of <paramref name="through"/> is written: their chunks may be reused.</summary>
    public void Release(LineChunk through)
    {
        while (_filled.TryPeek(out var chunk) && chunk.Id < through.Id && _filled.TryDequeue(out chunk))
        {
            if (chunk.Bytes.Length != ChunkBytes || Volatile.Read(ref _freeCount) >= MaxFreeChunks) continue;
            chunk.Used = 0;
            _free.Enqueue(chunk);
            Interlocked.Increment(ref _freeCount);
        }
    }

    private LineChunk Open(int atLeast)
    {
        LineChunk? chunk = null;
        if (atLeast <= ChunkBytes && _free.TryDequeue(out chunk)) Interlocked.Decrement(ref _freeCount);
        chunk ??= new LineChunk(this, Math.Max(ChunkBytes, atLeast));
        chunk.Id = Interlocked.Increment(ref _nextId);
        return chunk;
    }
}
