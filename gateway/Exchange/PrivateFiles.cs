namespace CityGateway.Exchange;

/// <summary>
/// Files of the exchange (partner key hashes, budget ledger, releases, key history, audit log) are
/// the city's own: created mode 0600 (folders 0700) from the start, never world-readable for a moment.
/// </summary>
public static class PrivateFiles
{
    public const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Options for a new file's stream with mode 0600 (the mode applies only when the file is created).</summary>
    public static FileStreamOptions Options(FileMode mode, FileAccess access = FileAccess.Write, FileShare share = FileShare.None, int bufferSize = 4096)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share, BufferSize = bufferSize };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerReadWrite;
        return options;
    }

    /// <summary>A folder created 0700 when it does not exist yet; an existing folder keeps its mode.</summary>
    public static DirectoryInfo CreateFolder(string path) =>
        OperatingSystem.IsWindows() ? Directory.CreateDirectory(path) : Directory.CreateDirectory(path, OwnerOnlyFolder);

    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/> through a new temporary file (0600), synced, then renamed.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes, bool flushToDisk = true)
    {
        var tmp = path + ".tmp";
        // A temporary file left by a crash keeps its mode when reopened; start from a new one.
        File.Delete(tmp);
        using (var stream = new FileStream(tmp, Options(FileMode.CreateNew)))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
