using System.CommandLine;
using CityGateway.Cli;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// <c>Gateway exchange rotate-key --current OLD.pem --new NEW.pem [--data DIR] [--city ID]</c>: moves
/// the city to a new signing key. Records the new key in the key history (DIR/signing-keys.json),
/// closes the old key's validity and stores the rollover statement signed by the old key. The
/// gateway must be stopped; afterwards point Gateway:Exchange:Signing:KeyFile at NEW.pem and start it.
/// Exit codes: 0 rotated, 1 a key or the history cannot be used, 2 wrong arguments.
/// </summary>
public static class RotateKeyCommand
{
    public static Command Create()
    {
        var current = CliOptions.Text("--current", "PATH", "the key the gateway signs with now (PEM private key)", required: true);
        var next = CliOptions.Text("--new", "PATH", "the new key, made with 'Gateway exchange keygen' (PEM private key)", required: true);
        var data = CliOptions.Text("--data", "DIR", "the exchange's data folder, Gateway:Exchange:DataPath (default data/exchange)");
        data.DefaultValueFactory = _ => "data/exchange";
        var city = CliOptions.Text("--city", "ID", "the city's id (Gateway:Exchange:CityId); needed only when the history does not record it yet");
        var command = new Command("rotate-key", "move to a new signing key: history, rollover statement signed by the old key") { current, next, data, city };
        command.SetAction(r => Run(r.GetValue(current)!, r.GetValue(next)!, r.GetValue(data) ?? "data/exchange",
            r.GetResult(city) is { Implicit: false } ? r.GetValue(city) : null, DateTimeOffset.UtcNow,
            r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command,
            "Stop the gateway first; then set Gateway:Exchange:Signing:KeyFile to the new key and start it again.\n" +
            "Exit codes: 0 rotated, 1 a key or the history cannot be used, 2 wrong arguments.");
        return command;
    }

    public static int Run(string currentPath, string newPath, string data, string? city, DateTimeOffset now, TextWriter output, TextWriter error)
    {
        try
        {
            // The running gateway holds its audit log's lock; the history is only changed while it is stopped.
            var auditLock = Path.Combine(data, "audit.jsonl.lock");
            if (File.Exists(auditLock))
            {
                try { using var probe = new FileStream(auditLock, FileMode.Open, FileAccess.ReadWrite, FileShare.None); }
                catch (IOException)
                {
                    error.WriteLine($"a gateway is running on {data} (its audit log is open); stop it first, then rotate the key");
                    return 1;
                }
            }
            using var current = ReleaseSigner.FromPemFile(currentPath);
            using var next = ReleaseSigner.FromPemFile(newPath);
            var history = SigningKeyHistory.Load(data);
            var statement = history.Rotate(current, next, city, now, SigningKeyHistory.FirstUse(data, now));
            output.WriteLine($"rotated the signing key of {history.City}: {current.KeyId} (retired) -> {next.KeyId} (current from {statement["payload"]!["validFrom"]})");
            output.WriteLine($"history and rollover statement: {history.FilePath}");
            output.WriteLine($"Now set Gateway:Exchange:Signing:KeyFile to {Path.GetFullPath(newPath)} and start the gateway. Keep {currentPath} offline: it is retired.");
            return 0;
        }
        catch (SigningKeyException e)
        {
            error.WriteLine(e.Message);
            return 1;
        }
        catch (SigningKeyHistoryException e)
        {
            error.WriteLine(e.Message);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"cannot write the key history in {data}: {e.Message}");
            return 1;
        }
    }
}
