namespace CityGateway.Sources.Serial;

public enum Parity { None, Even, Odd }

/// <summary>Line settings of a serial port (RS-232, RS-485 adapter, USB CDC).</summary>
public sealed class SerialPortSettings
{
    /// <summary>Device path: /dev/ttyUSB0, /dev/ttyS1, /dev/serial/by-id/..., or a pseudo-terminal.</summary>
    public string Path { get; set; } = "";

    public int BaudRate { get; set; } = 9600;

    /// <summary>5, 6, 7 or 8.</summary>
    public int DataBits { get; set; } = 8;

    public Parity Parity { get; set; } = Parity.None;

    /// <summary>1 or 2.</summary>
    public int StopBits { get; set; } = 1;

    /// <summary>RTS/CTS hardware flow control.</summary>
    public bool HardwareFlowControl { get; set; }

    public static readonly int[] StandardBaudRates =
        [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000];
}
