using System.CommandLine;
using CityGateway.Cli;

namespace CityGateway.Exchange;

/// <summary>
/// Operator commands for partner keys:
///   Gateway exchange issue-key --partner ID [--data DIR]   prints the new key once; only its hash is kept
///   Gateway exchange revoke-key --key-id ID [--data DIR]   the key stops working at once (no restart)
///   Gateway exchange list-keys [--data DIR]                ids, partners, dates; never the keys
///   Gateway exchange trust-partner-key --partner ID --public-key FILE [--data DIR] [--replace]
///                                                           re-pin a partner's signing key (PartnerTrustCommand)
/// DIR is Gateway:Exchange:DataPath (default data/exchange).
/// </summary>
public static class PartnerKeyCommands
{
    public static IEnumerable<Command> Create()
    {
        var partner = CliOptions.Text("--partner", "ID", "the partner's id in Gateway:Exchange:Partners", required: true);
        var issueData = DataOption();
        var issue = new Command("issue-key", "new partner API key, printed once; only its hash is kept") { partner, issueData };
        issue.SetAction(r => IssueKey(Store(r.GetValue(issueData)), r.GetValue(partner)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));

        var keyId = CliOptions.Text("--key-id", "ID", "the key's id, as list-keys shows it", required: true);
        var revokeData = DataOption();
        var revoke = new Command("revoke-key", "revoke a partner key (effective at once)") { keyId, revokeData };
        revoke.SetAction(r => RevokeKey(Store(r.GetValue(revokeData)), r.GetValue(keyId)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(revoke, "Exit codes: 0 revoked, 1 no such key, 2 wrong arguments.");

        var listData = DataOption();
        var list = new Command("list-keys", "partner keys: ids, partners, dates") { listData };
        list.SetAction(r => ListKeys(Store(r.GetValue(listData)), r.InvocationConfiguration.Output));
        return [issue, revoke, list, PartnerTrustCommand.Create()];
    }

    private static Option<string> DataOption()
    {
        var data = CliOptions.Text("--data", "DIR", "the exchange's data folder, Gateway:Exchange:DataPath");
        data.DefaultValueFactory = _ => "data/exchange";
        return data;
    }

    private static PartnerKeyStore Store(string? data) => new(Path.Combine(data ?? "data/exchange", "partner-keys.json"));

    public static int IssueKey(PartnerKeyStore store, string partner, TextWriter output, TextWriter error)
    {
        if (string.IsNullOrWhiteSpace(partner)) { error.WriteLine("issue-key needs --partner ID"); return CommandLineRunner.ExitUsage; }
        var (key, entry) = store.Issue(partner);
        output.WriteLine($"key id:  {entry.Id}");
        output.WriteLine($"partner: {entry.Partner}");
        output.WriteLine($"key:     {key}");
        output.WriteLine("Give the key to the partner over a secure channel. It is shown only now; the gateway keeps its SHA-256 hash.");
        return 0;
    }

    public static int RevokeKey(PartnerKeyStore store, string id, TextWriter output, TextWriter error)
    {
        if (string.IsNullOrWhiteSpace(id)) { error.WriteLine("revoke-key needs --key-id ID"); return CommandLineRunner.ExitUsage; }
        if (!store.Revoke(id)) { error.WriteLine($"no key with id '{id}' in {store.FilePath}"); return 1; }
        output.WriteLine($"key {id} revoked");
        return 0;
    }

    public static int ListKeys(PartnerKeyStore store, TextWriter output)
    {
        foreach (var e in store.Entries)
            output.WriteLine($"{e.Id}  {e.Partner,-20} issued {e.Created:yyyy-MM-dd HH:mm}Z  {(e.Revoked is { } r ? $"revoked {r:yyyy-MM-dd HH:mm}Z" : "active")}");
        return 0;
    }
}
