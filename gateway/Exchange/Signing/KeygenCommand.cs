using System.CommandLine;
using CityGateway.Cli;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// <c>Gateway exchange keygen --out PATH</c>: a new P-256 release signing key, written as PKCS#8 PEM
/// to a new file with mode 0600 (an existing file is never overwritten: partners may trust its
/// key). Prints the key id and the public key to hand to partners.
/// Exit codes: 0 written, 1 the file exists or cannot be written, 2 wrong arguments.
/// </summary>
public static class KeygenCommand
{
    public static Command Create()
    {
        var output = CliOptions.Text("--out", "PATH", "new file for the private key (PKCS#8 PEM, mode 0600); never overwritten", required: true);
        var command = new Command("keygen", "new signing key (PKCS#8 PEM, mode 0600); prints key id and public key") { output };
        command.SetAction(r => Run(r.GetValue(output)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command, "Exit codes: 0 written, 1 the file exists or cannot be written, 2 wrong arguments.");
        return command;
    }

    public static int Run(string path, TextWriter output, TextWriter error)
    {
        using var signer = ReleaseSigner.Generate();
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using var file = new FileStream(path, options);
            file.Write(System.Text.Encoding.ASCII.GetBytes(signer.ExportPkcs8PrivateKeyPem() + "\n"));
            file.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            error.WriteLine($"{path} exists; a signing key is never overwritten. Move it away first if it is really to be replaced.");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error.WriteLine($"cannot write {path}: {e.Message}");
            return 1;
        }

        output.WriteLine($"wrote a new P-256 signing key to {path} (PKCS#8 PEM, mode 0600)");
        output.WriteLine($"key id: {signer.KeyId}");
        output.WriteLine("public key (give this to partner cities):");
        output.WriteLine(signer.PublicKeyPem);
        return 0;
    }
}
