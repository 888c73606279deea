using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CityGateway.Journal;

/// <summary>
/// The disk flushes of the journal. fdatasync rather than fsync (what FileStream.Flush(true) does):
/// it skips the inode's timestamps, which the journal never needs back. Measured with
/// `deploy/bench.sh journal`, which prints both.
/// </summary>
internal static partial class SegmentSync
{
    /// <summary>Flushes a segment's data (and its length) to the disk; throws <see cref="IOException"/> when the disk refuses.</summary>
    public static void DataSync(SafeFileHandle segment)
    {
        int rc = OperatingSystem.IsLinux() ? Fdatasync(segment) : Fsync(segment);
        if (rc != 0) throw new IOException($"fdatasync of a journal segment failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>fsync of the journal folder, so a new segment's directory entry survives a power cut.</summary>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open the journal folder {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (FsyncFd(fd) != 0) throw new IOException($"fsync of the journal folder {directory} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncFd(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
