using System.ComponentModel;
using System.Runtime.InteropServices;
using CityGateway.Sources.Serial.Native;

namespace CityGateway.Sources.Serial;

/// <summary>Why a port read stopped: data, nothing yet, or the device went away.</summary>
public enum SerialReadStatus { Data, Timeout, Gone }

/// <summary>
/// A tty opened as a file descriptor and configured through termios: raw mode, speed, data bits,
/// parity, stop bits, flow control. Reads wait with poll(2) so a vanished device (USB unplugged,
/// pseudo-terminal closed) is seen as a hang-up rather than as silence.
/// </summary>
public sealed unsafe class SerialPort : IDisposable
{
    private int _fd;

    private SerialPort(int fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    public string Path { get; }

    public bool IsOpen => _fd >= 0;

    /// <summary>Opens and configures the port; throws <see cref="IOException"/> with the OS's reason.</summary>
    public static SerialPort Open(SerialPortSettings settings, bool write = false)
    {
        int fd = Libc.Open(settings.Path, (write ? Libc.O_RDWR : Libc.O_RDWR) | Libc.O_NOCTTY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) throw Failure($"cannot open {settings.Path}");
        var port = new SerialPort(fd, settings.Path);
        try
        {
            port.Configure(settings);
            return port;
        }
        catch
        {
            port.Dispose();
            throw;
        }
    }

    private void Configure(SerialPortSettings s)
    {
        if (Libc.IsATty(_fd) != 1) throw new IOException($"{Path} is not a terminal device");
        Libc.Termios t;
        if (Libc.TcGetAttr(_fd, &t) != 0) throw Failure($"tcgetattr {Path}");
        Libc.CfMakeRaw(&t); // no echo, no line editing, no translation of CR/LF, 8-bit clean
        if (Libc.CfSetSpeed(&t, (uint)s.BaudRate) != 0) throw Failure($"baud rate {s.BaudRate} on {Path}");
        t.CFlag &= ~(Libc.CSIZE | Libc.PARENB | Libc.PARODD | Libc.CSTOPB | Libc.CRTSCTS);
        t.CFlag |= s.DataBits switch
        {
            5 => Libc.CS5, 6 => Libc.CS6, 7 => Libc.CS7, 8 => Libc.CS8,
            _ => throw new ArgumentException($"data bits must be 5 to 8, not {s.DataBits}"),
        };
        if (s.Parity != Parity.None) t.CFlag |= Libc.PARENB | (s.Parity == Parity.Odd ? Libc.PARODD : 0);
        if (s.StopBits == 2) t.CFlag |= Libc.CSTOPB;
        if (s.HardwareFlowControl) t.CFlag |= Libc.CRTSCTS;
        t.CFlag |= Libc.CLOCAL | Libc.CREAD; // ignore modem lines, enable the receiver
        t.Cc[Libc.VMIN] = 0;
        t.Cc[Libc.VTIME] = 0;
        if (Libc.TcSetAttr(_fd, Libc.TCSANOW, &t) != 0) throw Failure($"tcsetattr {Path}");
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for bytes and reads what is there.</summary>
    public SerialReadStatus Read(Span<byte> buffer, int timeoutMs, out int read, out string? error)
    {
        read = 0;
        error = null;
        var pfd = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        int r = Libc.Poll(&pfd, 1, timeoutMs);
        if (r < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR) return SerialReadStatus.Timeout;
            error = $"poll: {Libc.Error(errno)}";
            return SerialReadStatus.Gone;
        }
        if (r == 0) return SerialReadStatus.Timeout;
        if ((pfd.REvents & Libc.POLLIN) == 0 && (pfd.REvents & (Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL)) != 0)
        {
            error = (pfd.REvents & Libc.POLLHUP) != 0 ? "hang-up (device removed or other end closed)" : "device error";
            return SerialReadStatus.Gone;
        }
        fixed (byte* p = buffer)
        {
            nint n = Libc.Read(_fd, p, buffer.Length);
            if (n > 0)
            {
                read = (int)n;
                return SerialReadStatus.Data;
            }
            if (n == 0)
            {
                error = "end of file (device removed or other end closed)";
                return SerialReadStatus.Gone;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Libc.EAGAIN or Libc.EINTR) return SerialReadStatus.Timeout;
            error = $"read: {Libc.Error(errno)}";
            return SerialReadStatus.Gone;
        }
    }

    /// <summary>Writes all bytes, waiting for room in the output queue; throws <see cref="IOException"/> when the device is gone.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        fixed (byte* start = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.Write(_fd, start + done, data.Length - done);
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (n < 0 && errno is Libc.EAGAIN or Libc.EINTR)
                {
                    var pfd = new Libc.PollFd { Fd = _fd, Events = Libc.POLLOUT };
                    Libc.Poll(&pfd, 1, 100);
                    if ((pfd.REvents & (Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL)) != 0) throw new IOException($"{Path}: hang-up while writing");
                    continue;
                }
                throw new IOException($"write to {Path}: {Libc.Error(errno)}");
            }
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.Close(fd);
    }

    private static IOException Failure(string what)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Libc.Error(errno)}", new Win32Exception(errno));
    }
}
