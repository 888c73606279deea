using System.CommandLine;
using CityGateway.Cli;
using CityGateway.Exchange.Audit;

namespace CityGateway.Exchange.Signing;

/// <summary>
/// <c>Gateway exchange &lt;command&gt; ...</c>: the data exchange's operator commands, run instead
/// of the host. Returns the process exit code: the command's own, 0 for <c>--help</c> (on any
/// command), 2 for a command line that is wrong.
/// </summary>
public static class ExchangeCommands
{
    /// <summary>The command tree: "Gateway" (so usage lines read as typed) with the "exchange" verb under it.</summary>
    public static Command CreateRoot()
    {
        var exchange = new Command("exchange", "The data exchange's operator commands, run instead of the gateway host.")
        {
            KeygenCommand.Create(),
            RotateKeyCommand.Create(),
            AuditCommands.CreateVerify(),
            AuditCommands.CreateTransparency(),
            AuditCommands.CreateRepair(),
        };
        foreach (var command in PartnerKeyCommands.Create()) exchange.Subcommands.Add(command);
        CommandLineRunner.SetEpilogue(exchange, "Run 'Gateway exchange COMMAND --help' for the options of a command.");
        var root = CommandLineRunner.Root("Gateway", "City telemetry gateway.");
        root.Subcommands.Add(exchange);
        return root;
    }

    /// <param name="args">The arguments after "exchange".</param>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // "help" as a command, as before the options parser: the same as --help.
        if (args is ["help"]) args = ["--help"];
        var root = CreateRoot();
        var result = CommandLineRunner.Parse(root, ["exchange", .. args]);
        if (result.Errors.Count == 0) return CommandLineRunner.Invoke(result, output, error);
        // No command, or one that does not exist: say so (the parser's words are vaguer), then list the commands there are.
        string[]? problem = result.CommandResult.Command.Name != "exchange" ? null
            : args.Length == 0 ? ["an exchange command is needed"]
            : !args[0].StartsWith('-') ? [$"unknown exchange command \"{args[0]}\""]
            : null;
        return CommandLineRunner.ReportUsage(result, error, withHelp: true, problem);
    }
}
