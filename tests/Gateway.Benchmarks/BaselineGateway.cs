using System.Diagnostics;
using CityGateway.Benchmarks.E2e;

namespace CityGateway.Benchmarks;

/// <summary>
/// The gateway of another commit, for a side-by-side run (--baseline): the commit's tree is taken
/// with <c>git archive</c> (the repository and its working tree are not touched) and the gateway
/// built in Release into ~/.cache/city-gateway-bench/baseline/&lt;full hash&gt;, where a later run
/// finds it again.
/// </summary>
internal static class BaselineGateway
{
    /// <summary>Builds (or finds) the commit's gateway; returns its Gateway.dll and the full hash.</summary>
    public static (string Dll, string Commit) Build(string commit)
    {
        var root = RepositoryRoot();
        var hash = Run("git", root, "rev-parse", "--verify", commit + "^{commit}").Trim();
        var dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "city-gateway-bench", "baseline", hash);
        var dll = Path.Combine(dir, "out", "Gateway.dll");
        if (File.Exists(dll)) return (dll, hash);
        var source = Path.Combine(dir, "src");
        if (Directory.Exists(source)) Directory.Delete(source, recursive: true);
        Directory.CreateDirectory(source);
        var archive = Path.Combine(dir, "tree.tar");
        Run("git", root, "archive", "--format=tar", "-o", archive, hash);
        Run("tar", dir, "-x", "-f", archive, "-C", source);
        File.Delete(archive);
        Console.WriteLine($"baseline: building the gateway of {hash[..12]} into {dir}/out");
        Run("dotnet", source, "build", Path.Combine("gateway", "Gateway.csproj"), "-c", "Release", "-o", Path.Combine(dir, "out"), "--nologo", "-v", "quiet");
        return (dll, hash);
    }

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Gateway.sln"))) return d.FullName;
        throw new BenchmarkFailure("cannot find the repository (no Gateway.sln above " + AppContext.BaseDirectory + ")");
    }

    private static string Run(string program, string folder, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new BenchmarkFailure($"cannot start {program}");
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new BenchmarkFailure($"{program} {string.Join(' ', args)} failed ({p.ExitCode}):\n{output.Result}{error.Result}");
        return output.Result;
    }
}
