using CityGateway.Exchange.Audit;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// <c>Gateway exchange &lt;command&gt; ...</c>: the data exchange's operator commands, run instead
/// of the host. Returns the process exit code.
/// </summary>
public static class ExchangeCommands
{
    private static readonly (string Usage, string What)[] Commands =
    [
        (KeygenCommand.Usage, "new signing key (PKCS#8 PEM, mode 0600); prints key id and public key"),
        (AuditCommands.VerifyUsage, "check the audit log's hash chain; exit 0 intact, 1 broken"),
        (AuditCommands.TransparencyUsage, "releases, rows, epsilon and pulls per partner"),
        (AuditCommands.RepairUsage, "move a torn last line (left by a crash) aside"),
        ("Gateway exchange issue-key --partner ID [--data DIR]", "new partner API key, printed once; only its hash is kept"),
        ("Gateway exchange revoke-key --key-id ID [--data DIR]", "revoke a partner key (effective at once)"),
        ("Gateway exchange list-keys [--data DIR]", "partner keys: ids, partners, dates"),
    ];

    private static readonly string Help = "usage:" + Environment.NewLine + string.Join(Environment.NewLine,
        Commands.Select(c => "  " + c.Usage.PadRight(Commands.Max(x => x.Usage.Length)) + "  " + c.What));

    /// <param name="args">The arguments after "exchange".</param>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        if (args.Length == 0)
        {
            error.WriteLine(Help);
            return 2;
        }
        var rest = args[1..];
        switch (args[0])
        {
            case "keygen": return KeygenCommand.Run(rest, output, error);
            case "verify-audit": return AuditCommands.VerifyAudit(rest, output, error);
            case "transparency": return AuditCommands.Transparency(rest, output, error);
            case "repair-audit": return AuditCommands.RepairAudit(rest, output, error);
            case "issue-key" or "revoke-key" or "list-keys": return PartnerKeyCommands.Run(args[0], rest, output, error);
            case "help" or "--help" or "-h":
                output.WriteLine(Help);
                return 0;
            default:
                error.WriteLine($"unknown exchange command \"{args[0]}\"");
                error.WriteLine(Help);
                return 2;
        }
    }
}
