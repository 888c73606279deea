namespace CityGateway.Sources.Serial;

/// <summary>
/// The real reason a serial device could not be opened or was lost. System.IO.Ports reports a
/// missing device as UnauthorizedAccessException ("access denied") and an unplugged one as
/// ObjectDisposedException ("the port is closed"); an operator told to check permissions for an
/// unplugged cable looks in the wrong place. The device path decides first (gone is gone, whatever
/// the exception says), then the OS error the library carries as the inner exception's HResult.
/// </summary>
public static class SerialFaults
{
    public const string DeviceGone = "device gone (unplugged?)";
    public const string PermissionDenied = "permission denied: add the gateway's user to group dialout";
    public const string HangUp = "hang-up (device removed or other end closed)";
    public const string NotATerminal = "not a terminal device";
    public const string Busy = "in use by another program (opened for exclusive use)";

    // Linux errno values; System.IO.Ports puts the OS error number in the inner IOException's HResult.
    private const int ENOENT = 2, EIO = 5, ENXIO = 6, EBUSY = 16, ENODEV = 19, ENOTTY = 25;

    /// <summary>True when the device is there: the node (a link's final target: a dangling pty or
    /// by-id link is gone), or on Windows a COM port the system lists.</summary>
    public static bool Exists(string path) => OperatingSystem.IsWindows()
        ? System.IO.Ports.SerialPort.GetPortNames().Contains(path, StringComparer.OrdinalIgnoreCase) || File.Exists(path)
        : File.Exists(path);

    /// <summary>Why opening <paramref name="path"/> failed.</summary>
    public static string Describe(string path, Exception e)
    {
        if (!Exists(path)) return DeviceGone;
        int errno = OsError(e);
        return errno switch
        {
            ENOENT or ENXIO or ENODEV => DeviceGone,
            ENOTTY => NotATerminal,
            EBUSY => Busy,
            EIO => HangUp,
            // What remains of "access denied" on a device that is there is a permission problem
            // (EACCES, EPERM; the library does not always carry the number through).
            _ when e is UnauthorizedAccessException => PermissionDenied,
            _ => e.InnerException?.Message ?? e.Message,
        };
    }

    /// <summary>Why a port that was open stopped delivering (read or write failed, or end of stream).</summary>
    public static string DescribeLoss(string path, Exception? e)
    {
        if (!Exists(path)) return DeviceGone;
        if (e is null or ObjectDisposedException or InvalidOperationException) return HangUp;
        int errno = OsError(e);
        return errno switch
        {
            EIO or 0 => HangUp,
            ENXIO or ENODEV => DeviceGone,
            _ => e.InnerException?.Message ?? e.Message,
        };
    }

    private static int OsError(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is IOException && x.HResult is > 0 and < 4096) return x.HResult;
        return 0;
    }
}
