namespace CityGateway.Tests.Infrastructure;

public sealed class TempDir : IDisposable
{
    public TempDir(string prefix)
    {
        Path = Directory.CreateTempSubdirectory("citygw-" + prefix + "-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
