using System.CommandLine;
using CityGateway.Cli;
using CityGateway.Exchange.Signing;

namespace CityGateway.Exchange;

/// <summary>
/// <c>Gateway exchange trust-partner-key --partner ID --public-key FILE [--data DIR] [--replace]</c>:
/// the operator's re-pin of a partner's signing key, after confirming it with the partner out of
/// band (for a key that changed without a rollover statement, or after a compromise with
/// --replace). Writes federation/ID/trusted-keys.json under DIR (Gateway:Exchange:DataPath); a
/// running gateway uses it from its next poll.
/// </summary>
public static class PartnerTrustCommand
{
    public static Command Create()
    {
        var partner = CliOptions.Text("--partner", "ID", "the partner's id in Gateway:Exchange:Partners", required: true);
        var key = CliOptions.Text("--public-key", "FILE", "the partner's public key, PEM \"PUBLIC KEY\" (P-256)", required: true);
        var data = CliOptions.Text("--data", "DIR", "the exchange's data folder, Gateway:Exchange:DataPath");
        data.DefaultValueFactory = _ => "data/exchange";
        var replace = CliOptions.Flag("--replace", "trust only this key from now on (drop the partner's other trusted keys)");
        var command = new Command("trust-partner-key", "trust a partner's signing key (re-pin), after confirming it with the partner")
        {
            partner, key, data, replace,
        };
        command.SetAction(r => Trust(r.GetValue(data) ?? "data/exchange", r.GetValue(partner)!, r.GetValue(key)!, r.GetValue(replace),
            r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command, "Exit codes: 0 trusted, 1 the key file is unreadable or not a P-256 public key, 2 wrong arguments.");
        return command;
    }

    public static int Trust(string data, string partner, string keyFile, bool replace, TextWriter output, TextWriter error)
    {
        if (string.IsNullOrWhiteSpace(partner) || partner.IndexOfAny([.. Path.GetInvalidFileNameChars(), '.']) >= 0)
        {
            error.WriteLine($"--partner '{partner}' is not a partner id");
            return CommandLineRunner.ExitUsage;
        }
        string pem;
        try { pem = File.ReadAllText(keyFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error.WriteLine($"cannot read --public-key {keyFile}: {e.Message}");
            return 1;
        }
        var keyId = ReleaseSigner.KeyIdOf(pem);
        if (keyId is null)
        {
            error.WriteLine($"--public-key {keyFile} is not a P-256 \"PUBLIC KEY\" PEM");
            return 1;
        }
        var folder = Directory.CreateDirectory(Path.Combine(data, "federation", partner)).FullName;
        PartnerTrustedKeys keys;
        try { keys = PartnerTrustedKeys.Load(folder); }
        catch (FederationStoreException e) when (replace)
        {
            // A damaged file is what --replace is for.
            error.WriteLine($"ignoring the unreadable trusted keys: {e.Message}");
            File.Delete(Path.Combine(folder, PartnerTrustedKeys.FileName));
            keys = PartnerTrustedKeys.Load(folder);
        }
        catch (FederationStoreException e)
        {
            error.WriteLine(e.Message + " (use --replace to start over with this key)");
            return 1;
        }
        var entry = new TrustedKey(keyId, pem.Trim() + "\n", "operator", DateTimeOffset.UtcNow);
        if (replace) keys.ReplaceAll(entry);
        else keys.Add(entry);
        output.WriteLine($"partner: {partner}");
        output.WriteLine($"key id:  {keyId}");
        output.WriteLine($"trusted: {string.Join(", ", keys.Keys.Select(k => k.KeyId))}");
        output.WriteLine($"file:    {keys.FilePath}");
        output.WriteLine("A running gateway verifies with it from its next poll.");
        return 0;
    }
}
