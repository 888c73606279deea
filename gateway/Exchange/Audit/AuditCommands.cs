using System.CommandLine;
using CityGateway.Cli;

namespace CityGateway.Exchange.Audit;

/// <summary>
/// The operator commands on the audit log:
/// <c>verify-audit --file PATH [--anchor SEQ:HASH]</c>,
/// <c>transparency --file PATH [--json]</c>,
/// <c>repair-audit --file PATH</c>.
/// Exit codes: 0 intact (or repaired), 1 broken, 2 wrong arguments or a file that cannot be read.
/// </summary>
public static class AuditCommands
{
    private const string ExitCodes = "Exit codes: 0 intact, 1 broken, 2 wrong arguments or a file that cannot be read.";

    private static Option<string> FileOption() => CliOptions.Text("--file", "PATH", "the audit log (Gateway:Exchange:DataPath/audit.jsonl)", required: true);

    public static Command CreateVerify()
    {
        var file = FileOption();
        var anchor = new Option<AuditHead?>("--anchor")
        {
            HelpName = "SEQ:HASH",
            Description = "a head received earlier (from a signed checkpoint): the log must still contain it",
            CustomParser = r =>
            {
                var text = r.Tokens[0].Value;
                if (AuditHead.TryParse(text, out var head)) return head;
                r.AddError($"--anchor {text} is not SEQ:HASH (64 lower-case hex digits)");
                return null;
            },
        };
        var command = new Command("verify-audit", "check the audit log's hash chain; exit 0 intact, 1 broken") { file, anchor };
        command.SetAction(r => VerifyAudit(r.GetValue(file)!, r.GetValue(anchor), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command, ExitCodes);
        return command;
    }

    public static Command CreateTransparency()
    {
        var file = FileOption();
        var json = CliOptions.Flag("--json", "print the totals as JSON");
        var command = new Command("transparency", "releases, rows, epsilon and pulls per partner") { file, json };
        command.SetAction(r => Transparency(r.GetValue(file)!, r.GetValue(json), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command, ExitCodes);
        return command;
    }

    public static Command CreateRepair()
    {
        var file = FileOption();
        var command = new Command("repair-audit", "move a torn last line (left by a crash) aside") { file };
        command.SetAction(r => RepairAudit(r.GetValue(file)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        CommandLineRunner.SetEpilogue(command, "Exit codes: 0 repaired or intact, 1 other damage (left alone), 2 wrong arguments or a file that cannot be read.");
        return command;
    }

    /// <summary>Checks the chain; prints "intact: …" or where it breaks.</summary>
    public static int VerifyAudit(string file, AuditHead? anchor, TextWriter output, TextWriter error)
    {
        var result = AuditLog.Verify(file, anchor);
        if (result.FirstBreak?.Problem == AuditProblem.Unreadable)
        {
            error.WriteLine($"cannot read the audit log {file}: {result.FirstBreak.Detail}");
            return 2;
        }
        if (result.Ok)
        {
            output.WriteLine($"audit log {file}: intact, {result.Entries} entries, head {result.Head}");
            return 0;
        }
        output.WriteLine($"audit log {file}: BROKEN at line {result.FirstBreak!.Line}{(result.FirstBreak.Seq is { } s ? $" (seq {s})" : "")}");
        output.WriteLine($"  problem: {result.FirstBreak.Problem}: {result.FirstBreak.Detail}");
        output.WriteLine($"  verified before it: {result.Entries} entries, head {result.Head}");
        return 1;
    }

    /// <summary>Prints the per-partner totals of the verified entries; exit code as for verify-audit.</summary>
    public static int Transparency(string file, bool json, TextWriter output, TextWriter error)
    {
        var summary = AuditLog.Summarise(file);
        if (summary.Verification.FirstBreak?.Problem == AuditProblem.Unreadable)
        {
            error.WriteLine($"cannot read the audit log {file}: {summary.Verification.FirstBreak.Detail}");
            return 2;
        }
        if (json)
            output.WriteLine(summary.ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        else
            output.Write(summary.ToText());
        return summary.Verification.Ok ? 0 : 1;
    }

    /// <summary>Moves a torn last line aside; leaves any other damage alone.</summary>
    public static int RepairAudit(string file, TextWriter output, TextWriter error)
    {
        if (!File.Exists(file))
        {
            error.WriteLine($"cannot read the audit log {file}: no such file");
            return 2;
        }
        AuditRepair repair;
        try { repair = AuditLog.RepairTornTail(file); }
        catch (AuditLogException e)
        {
            error.WriteLine(e.Message);
            return 2;
        }
        output.WriteLine($"audit log {file}: {repair.Message}");
        if (repair.Repaired || repair.After.Ok) return 0;
        output.WriteLine($"  {repair.After}");
        return 1;
    }
}
