using Ports = System.IO.Ports;

namespace CityGateway.Sources.Serial;

/// <summary>Why a port read stopped: data, nothing yet, or the device went away.</summary>
public enum SerialReadStatus { Data, Timeout, Gone }

/// <summary>
/// A serial device (tty, COM port) on System.IO.Ports: raw bytes from its stream, speed, data bits,
/// parity, stop bits and RTS/CTS set by the library (raw mode, no translation of CR/LF, 8-bit clean).
/// Every failure leaves as an <see cref="IOException"/> (open, write) or <see cref="SerialReadStatus.Gone"/>
/// (read) whose message is the real reason (<see cref="SerialFaults"/>): the library itself says
/// "access denied" for a missing device and "the port is closed" for an unplugged one.
/// </summary>
public sealed class SerialPort : IDisposable
{
    private readonly Ports.SerialPort _port;
    private readonly Stream _stream;
    // Writes, when asked for at open on Linux and macOS: the device opened a second time, unbuffered,
    // so that a write is one write(2). The library's own stream hands every write to its I/O thread,
    // which polls the device each millisecond: about 1.2 ms a write, which capped a writer of one
    // line a call (the serial simulator) near 800 lines a second.
    private readonly FileStream? _writer;
    private int _readTimeout = -2;
    private volatile bool _disposed;

    private SerialPort(Ports.SerialPort port, string path, FileStream? writer)
    {
        _port = port;
        _stream = port.BaseStream;
        _writer = writer;
        Path = path;
    }

    public string Path { get; }

    public bool IsOpen => !_disposed && _port.IsOpen;

    /// <summary>Opens and configures the port; throws <see cref="IOException"/> with the real reason.
    /// <paramref name="write"/>: the caller writes (see <see cref="Write"/>).</summary>
    public static SerialPort Open(SerialPortSettings settings, bool write = false)
    {
        string path = settings.Path;
        // Checked first: the library would report a missing device as "access denied".
        if (!SerialFaults.Exists(path)) throw new IOException($"cannot open {path}: {SerialFaults.DeviceGone}");
        var port = new Ports.SerialPort(path)
        {
            BaudRate = settings.BaudRate,
            DataBits = settings.DataBits is >= 5 and <= 8 ? settings.DataBits : throw new ArgumentException($"data bits must be 5 to 8, not {settings.DataBits}"),
            Parity = settings.Parity switch { Parity.Even => Ports.Parity.Even, Parity.Odd => Ports.Parity.Odd, _ => Ports.Parity.None },
            StopBits = settings.StopBits == 2 ? Ports.StopBits.Two : Ports.StopBits.One,
            Handshake = settings.HardwareFlowControl ? Ports.Handshake.RequestToSend : Ports.Handshake.None,
            WriteTimeout = Ports.SerialPort.InfiniteTimeout,
        };
        try
        {
            port.Open();
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException or InvalidOperationException)
        {
            port.Dispose();
            throw new IOException($"cannot open {path}: {SerialFaults.Describe(path, e)}", e);
        }
        catch (ArgumentOutOfRangeException e)
        {
            port.Dispose();
            throw new IOException($"cannot open {path}: {e.Message}", e);
        }
        RaiseModemLines(port, settings.HardwareFlowControl);
        FileStream? writer = null;
        if (write && !OperatingSystem.IsWindows())
        {
            try
            {
                // Configured by the library above; this handle only writes, with no buffer of its own.
                writer = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                port.Dispose();
                throw new IOException($"cannot open {path}: {SerialFaults.Describe(path, e)}", e);
            }
        }
        return new SerialPort(port, path, writer);
    }

    /// <summary>
    /// A tty opened on Linux has DTR and RTS raised, and devices expect them (some USB adapters send
    /// nothing without DTR); System.IO.Ports drives them from DtrEnable/RtsEnable, off by default,
    /// so they are asked for. A pseudo-terminal has no modem lines: the request fails there and
    /// changes nothing.
    /// </summary>
    private static void RaiseModemLines(Ports.SerialPort port, bool hardwareFlowControl)
    {
        try
        {
            port.DtrEnable = true;
            if (!hardwareFlowControl) port.RtsEnable = true; // with RTS/CTS the driver owns RTS
        }
        catch (IOException) { }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for bytes and reads what is there.</summary>
    public SerialReadStatus Read(byte[] buffer, int timeoutMs, out int read, out string? error) =>
        Read(buffer, 0, buffer.Length, timeoutMs, out read, out error);

    /// <summary>Waits up to <paramref name="timeoutMs"/> for bytes and reads what is there.</summary>
    public SerialReadStatus Read(byte[] buffer, int offset, int count, int timeoutMs, out int read, out string? error)
    {
        read = 0;
        error = null;
        try
        {
            if (timeoutMs != _readTimeout) _stream.ReadTimeout = _readTimeout = Math.Max(1, timeoutMs);
            int n = _stream.Read(buffer, offset, count);
            if (n > 0)
            {
                read = n;
                return SerialReadStatus.Data;
            }
            error = SerialFaults.DescribeLoss(Path, null);
            return SerialReadStatus.Gone;
        }
        catch (TimeoutException)
        {
            return SerialReadStatus.Timeout;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or UnauthorizedAccessException)
        {
            error = SerialFaults.DescribeLoss(Path, e);
            return SerialReadStatus.Gone;
        }
    }

    /// <summary>Reads into a span (through a copy); the array overloads read in place.</summary>
    public SerialReadStatus Read(Span<byte> buffer, int timeoutMs, out int read, out string? error)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var status = Read(rented, 0, buffer.Length, timeoutMs, out read, out error);
            rented.AsSpan(0, read).CopyTo(buffer);
            return status;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Writes all bytes, waiting for room in the output queue; throws <see cref="IOException"/> when the device is gone.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        try
        {
            if (_writer is not null) _writer.Write(data);
            else _stream.Write(data);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or UnauthorizedAccessException or TimeoutException)
        {
            throw new IOException($"write to {Path}: {SerialFaults.DescribeLoss(Path, e)}", e);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            _writer?.Dispose();
            _port.Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // Closing a vanished device can fail; the handle is released either way.
        }
    }
}
