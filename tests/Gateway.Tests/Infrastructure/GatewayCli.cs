using System.Diagnostics;

namespace CityGateway.Tests.Infrastructure;

/// <summary>Runs the built gateway executable (Gateway.dll) to completion, as an operator would: exit code and all output.</summary>
public static class GatewayCli
{
    public static (int ExitCode, string Output) Run(TempDir dir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dir.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Gateway.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(true);
            throw new TimeoutException($"the gateway did not exit ({string.Join(' ', args)}):\n" + stdout.Result + stderr.Result);
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
