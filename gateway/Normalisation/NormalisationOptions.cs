namespace CityGateway.Normalisation;

public sealed class NormalisationOptions
{
    /// <summary>Device timestamps further ahead of the receive time than this are quarantined (clock_skew).</summary>
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Device timestamps older than this, relative to the receive time, are quarantined (clock_skew).</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);
}

public sealed class RegistryOptions
{
    /// <summary>Path of the device registry JSON file.</summary>
    public string Path { get; set; } = "";
}
