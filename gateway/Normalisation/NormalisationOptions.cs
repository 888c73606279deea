namespace CityGateway.Normalisation;

public sealed class NormalisationOptions
{
    /// <summary>Device timestamps further ahead of the receive time than this are quarantined (clock_skew).</summary>
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Device timestamps older than this, relative to the receive time, are quarantined (clock_skew).</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>
/// The device registry files (section Gateway:Registry): <see cref="Path"/>, then each of
/// <see cref="Paths"/>. The registry is the union of their devices; a device id may be in one file only.
/// </summary>
public sealed class RegistryOptions
{
    public const string PathKey = "Gateway:Registry:Path";
    public const string PathsKey = "Gateway:Registry:Paths";

    /// <summary>The file read when neither <see cref="Path"/> nor <see cref="Paths"/> is configured.</summary>
    public const string DefaultPath = "devices.json";

    /// <summary>Path of the (first) device registry JSON file.</summary>
    public string Path { get; set; } = "";

    /// <summary>More device registry JSON files (Gateway:Registry:Paths:0, :1, ...), read after <see cref="Path"/>.</summary>
    public List<string> Paths { get; set; } = [];

    /// <summary>Every file given, in order, each with the configuration key that names it.</summary>
    public IReadOnlyList<RegistryFile> Files()
    {
        var files = new List<RegistryFile>();
        if (!string.IsNullOrWhiteSpace(Path)) files.Add(new RegistryFile(PathKey, Path));
        for (int i = 0; i < Paths.Count; i++)
            if (!string.IsNullOrWhiteSpace(Paths[i])) files.Add(new RegistryFile($"{PathsKey}:{i}", Paths[i]));
        return files;
    }
}

/// <summary>One device registry file and the configuration key that names it (used in its errors).</summary>
public readonly record struct RegistryFile(string Key, string Path);
