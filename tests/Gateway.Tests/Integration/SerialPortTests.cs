using System.Text;
using CityGateway.Sources.Serial;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>The port class (System.IO.Ports underneath) over a real pseudo-terminal pair.</summary>
public sealed class SerialPortTests
{
    [Fact]
    public void Bytes_written_at_one_end_are_read_at_the_other_and_a_torn_down_pair_is_seen_as_gone()
    {
        using var pty = new PtyPair();
        using var reader = SerialPort.Open(new SerialPortSettings { Path = pty.GatewayEnd, BaudRate = 115200, Parity = Parity.Even, StopBits = 2 });
        using var writer = SerialPort.Open(new SerialPortSettings { Path = pty.DeviceEnd, BaudRate = 115200 }, write: true);
        var sent = Encoding.ASCII.GetBytes("dev=wq-07 ph=7.21\r\n\u0000\u00ff binary ok\n");
        writer.Write(sent);
        var got = new List<byte>();
        var buffer = new byte[256];
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (got.Count < sent.Length && DateTime.UtcNow < deadline)
            if (reader.Read(buffer, 100, out int n, out _) == SerialReadStatus.Data) got.AddRange(buffer.AsSpan(0, n).ToArray());
        Assert.Equal(sent, got.ToArray()); // raw mode: no CR/LF translation, 8-bit clean, no echo

        pty.Kill();
        SerialReadStatus status = SerialReadStatus.Timeout;
        deadline = DateTime.UtcNow.AddSeconds(5);
        while (status == SerialReadStatus.Timeout && DateTime.UtcNow < deadline) status = reader.Read(buffer, 100, out _, out _);
        Assert.Equal(SerialReadStatus.Gone, status);
    }

    [Fact]
    public void Opening_a_missing_device_or_a_plain_file_says_why()
    {
        using var dir = new TempDir("notatty");
        var missing = Assert.Throws<IOException>(() => SerialPort.Open(new SerialPortSettings { Path = dir.File("ttyUSB9") }));
        Assert.Contains("ttyUSB9", missing.Message);
        File.WriteAllText(dir.File("plain"), "x");
        var plain = Assert.Throws<IOException>(() => SerialPort.Open(new SerialPortSettings { Path = dir.File("plain") }));
        Assert.Contains("not a terminal", plain.Message);
    }
}
