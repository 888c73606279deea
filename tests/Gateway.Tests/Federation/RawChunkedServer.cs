using System.Net;
using System.Net.Sockets;
using System.Text;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Federation;

/// <summary>
/// A minimal HTTP/1.1 server on a raw socket, for the one answer Kestrel cannot measure honestly:
/// an endless chunked body (no Content-Length). Kestrel drops writes silently once a client has
/// gone, so bytes "written" there say nothing; here a send fails as soon as the client hangs up,
/// and <see cref="MaxBytesSent"/> is what the client could have been made to receive (the socket
/// buffers included). Paths ending in "city-exchange" get <see cref="WellKnown"/>; others the flood.
/// </summary>
public sealed class RawChunkedServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private long _maxSent;

    public RawChunkedServer(Func<string> wellKnown, long limitBytes = 512L * 1024 * 1024)
    {
        Port = ServiceProcess.FreePort();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _ = Task.Run(() => AcceptAsync(wellKnown, limitBytes));
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";
    public long MaxBytesSent => Interlocked.Read(ref _maxSent);
    public int Floods;

    private async Task AcceptAsync(Func<string> wellKnown, long limit)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = Task.Run(() => ServeAsync(socket, wellKnown, limit));
        }
    }

    private async Task ServeAsync(Socket socket, Func<string> wellKnown, long limit)
    {
        using var _ = socket;
        using var stream = new NetworkStream(socket);
        var head = new StringBuilder();
        var one = new byte[1];
        // The request head, bounded; no body is expected on a GET.
        while (head.Length < 16 * 1024 && !head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            int n;
            try { n = await stream.ReadAsync(one, _stop.Token); }
            catch (Exception e) when (e is IOException or OperationCanceledException) { return; }
            if (n == 0) return;
            head.Append((char)one[0]);
        }
        var path = head.ToString().Split(' ')[1];
        try
        {
            if (path.EndsWith("city-exchange", StringComparison.Ordinal))
            {
                var body = Encoding.UTF8.GetBytes(wellKnown());
                await stream.WriteAsync(Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), _stop.Token);
                await stream.WriteAsync(body, _stop.Token);
                return;
            }
            Interlocked.Increment(ref Floods);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"), _stop.Token);
            var payload = Encoding.ASCII.GetBytes(new string(' ', 64 * 1024));
            var chunk = Encoding.ASCII.GetBytes($"{payload.Length:x}\r\n").Concat(payload).Concat("\r\n"u8.ToArray()).ToArray();
            var first = Encoding.ASCII.GetBytes("""{"releases":[],"padding":" """);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{first.Length:x}\r\n").Concat(first).Concat("\r\n"u8.ToArray()).ToArray(), _stop.Token);
            long sent = 0;
            while (sent < limit)
            {
                await stream.WriteAsync(chunk, _stop.Token);
                sent += payload.Length;
                long seen;
                while ((seen = Interlocked.Read(ref _maxSent)) < sent && Interlocked.CompareExchange(ref _maxSent, sent, seen) != seen) { }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // The client hung up: what this test wants to see. The count above says when.
            Interlocked.Increment(ref HungUp);
        }
    }

    /// <summary>Connections the client closed while being flooded.</summary>
    public int HungUp;

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
