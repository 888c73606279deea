using System.Net;
using System.Net.Sockets;
using MQTTnet.Channel;

namespace CityGateway.Simulators;

/// <summary>
/// Opens the TCP connection for <see cref="MqttPublishClient"/>: socket buffers of the configured
/// size, no Nagle delay, and a <see cref="BufferedSocketStream"/> over it.
/// </summary>
internal sealed class BufferedSocketStreamProvider(int socketBufferBytes) : IMqttClientStreamProvider
{
    public async Task<Stream> ConnectAsync(EndPoint brokerEndPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendBufferSize = socketBufferBytes,
            ReceiveBufferSize = socketBufferBytes,
        };
        try
        {
            await socket.ConnectAsync(brokerEndPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new BufferedSocketStream(new NetworkStream(socket, ownsSocket: true), 64 * 1024);
    }
}

/// <summary>
/// A socket stream for MQTTnet, which reads a packet's header a byte at a time: reads come from a
/// buffer filled by one receive at a time, so one receive call takes in every acknowledgement that
/// has arrived instead of three calls for each. Writes go straight to the socket.
/// (Gathering writes into batches was tried: at the rates one publisher reaches, the batches stay
/// small and waking a sender costs more than the send calls it saves.)
/// </summary>
internal sealed class BufferedSocketStream(Stream inner, int readBufferBytes) : Stream
{
    private readonly byte[] _read = new byte[readBufferBytes];
    private int _readStart;
    private int _readEnd;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (destination.Length == 0) return 0;
        if (_readStart == _readEnd)
        {
            if (destination.Length >= _read.Length) return await inner.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
            _readStart = 0;
            _readEnd = await inner.ReadAsync(_read, cancellationToken).ConfigureAwait(false);
            if (_readEnd == 0) return 0;
        }
        return Take(destination.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> destination)
    {
        if (destination.Length == 0) return 0;
        if (_readStart == _readEnd)
        {
            if (destination.Length >= _read.Length) return inner.Read(destination);
            _readStart = 0;
            _readEnd = inner.Read(_read);
            if (_readEnd == 0) return 0;
        }
        return Take(destination);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(source, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Write(ReadOnlySpan<byte> source) => inner.Write(source);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    private int Take(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, _readEnd - _readStart);
        _read.AsSpan(_readStart, n).CopyTo(destination);
        _readStart += n;
        return n;
    }
}
