namespace CityGateway.Tests.Infrastructure;

/// <summary>The repository the tests were built from, for files the tests read where they are (dashboards, deploy templates).</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>A file of the repository, by its path from the root ("deploy/mosquitto/local.conf.template").</summary>
    public static string File(string relativePath) => Path.Combine(Root, relativePath);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Gateway.sln")) && Directory.Exists(Path.Combine(dir.FullName, "deploy")))
                return dir.FullName;
        throw new DirectoryNotFoundException("repository root (Gateway.sln, deploy/) not found above " + AppContext.BaseDirectory);
    }
}
