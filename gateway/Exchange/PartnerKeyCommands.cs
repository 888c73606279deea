namespace CityGateway.Exchange;

/// <summary>
/// Operator commands for partner keys:
///   Gateway exchange issue-key --partner ID [--data DIR]   prints the new key once; only its hash is kept
///   Gateway exchange revoke-key --key-id ID [--data DIR]   the key stops working at once (no restart)
///   Gateway exchange list-keys [--data DIR]                ids, partners, dates; never the keys
/// DIR is Gateway:Exchange:DataPath (default data/exchange).
/// </summary>
public static class PartnerKeyCommands
{
    public static readonly string[] Names = ["issue-key", "revoke-key", "list-keys"];

    public static int Run(string command, string[] args, TextWriter output, TextWriter error)
    {
        string data = Option(args, "--data") ?? "data/exchange";
        var store = new PartnerKeyStore(Path.Combine(data, "partner-keys.json"));
        switch (command)
        {
            case "issue-key":
                var partner = Option(args, "--partner");
                if (string.IsNullOrWhiteSpace(partner)) { error.WriteLine("issue-key needs --partner ID"); return 2; }
                var (key, entry) = store.Issue(partner);
                output.WriteLine($"key id:  {entry.Id}");
                output.WriteLine($"partner: {entry.Partner}");
                output.WriteLine($"key:     {key}");
                output.WriteLine("Give the key to the partner over a secure channel. It is shown only now; the gateway keeps its SHA-256 hash.");
                return 0;
            case "revoke-key":
                var id = Option(args, "--key-id");
                if (string.IsNullOrWhiteSpace(id)) { error.WriteLine("revoke-key needs --key-id ID"); return 2; }
                if (!store.Revoke(id)) { error.WriteLine($"no key with id '{id}' in {store.FilePath}"); return 1; }
                output.WriteLine($"key {id} revoked");
                return 0;
            case "list-keys":
                foreach (var e in store.Entries)
                    output.WriteLine($"{e.Id}  {e.Partner,-20} issued {e.Created:yyyy-MM-dd HH:mm}Z  {(e.Revoked is { } r ? $"revoked {r:yyyy-MM-dd HH:mm}Z" : "active")}");
                return 0;
            default:
                error.WriteLine($"unknown command '{command}'");
                return 2;
        }
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
