using CityGateway.Exchange.Audit;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// <c>Gateway exchange keygen --out PATH</c>: a new P-256 release signing key, written as PKCS#8 PEM
/// to a new file with mode 0600 (an existing file is never overwritten: partners may trust its
/// key). Prints the key id and the public key to hand to partners.
/// Exit codes: 0 written, 1 the file exists or cannot be written, 2 wrong arguments.
/// </summary>
public static class KeygenCommand
{
    public const string Usage = "Gateway exchange keygen --out PATH";

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        if (!Arguments.TryParse(args, ["--out"], [], out var values, out var problem) || !values.TryGetValue("--out", out var path))
        {
            error.WriteLine(problem ?? "--out is required");
            error.WriteLine("usage: " + Usage);
            return 2;
        }

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
