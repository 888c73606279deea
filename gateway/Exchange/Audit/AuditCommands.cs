using System.CommandLine;
using CityGateway.Cli;

namespace CityGateway.Exchange.Audit;

/// <summary>
/// The operator commands on the audit log:
/// <c>verify-audit --file PATH [--anchor SEQ:HASH] [--checkpoint FILE --public-key PEM]</c>,
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
        var checkpoint = CliOptions.Text("--checkpoint", "FILE",
            "signed checkpoints kept earlier (one envelope a line, or one saved from GET /api/exchange/v1/checkpoint): each must verify and the log must still hold its seq with its hash");
        var publicKey = CliOptions.Text("--public-key", "PEM", "the city's public key (PEM file, \"publicKey\" of /.well-known/city-exchange) that signed the checkpoints");
        var command = new Command("verify-audit", "check the audit log's hash chain, and against signed checkpoints; exit 0 intact, 1 broken") { file, anchor, checkpoint, publicKey };
        command.Validators.Add(r =>
        {
            bool hasCheckpoint = r.GetResult(checkpoint) is not null, hasKey = r.GetResult(publicKey) is not null;
            if (hasCheckpoint && !hasKey) r.AddError("--checkpoint needs --public-key PEM, the key that signed the checkpoints");
            if (hasKey && !hasCheckpoint) r.AddError("--public-key is used only with --checkpoint FILE");
        });
        command.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            return r.GetResult(checkpoint) is null
                ? VerifyAudit(r.GetValue(file)!, r.GetValue(anchor), output, error)
                : VerifyAuditAgainstCheckpoints(r.GetValue(file)!, r.GetValue(anchor), r.GetValue(checkpoint)!, r.GetValue(publicKey)!, output, error);
        });
        CommandLineRunner.SetEpilogue(command, ExitCodes + "\n" + CheckpointNote);
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

    private const string CheckpointNote =
        "With --checkpoint, exit 0 only when the chain is intact and every checkpoint in FILE is signed by --public-key "
        + "and still matches the log (the entry with its seq has its hash); a log changed and re-chained after a checkpoint, "
        + "or cut below it, exits 1.";

    /// <summary>
    /// Checks the chain (and <paramref name="anchor"/>) and every checkpoint in <paramref name="checkpointFile"/>
    /// against it, with the public key in <paramref name="publicKeyFile"/>. 0 all hold, 1 any fails, 2 a file cannot be read.
    /// </summary>
    public static int VerifyAuditAgainstCheckpoints(string file, AuditHead? anchor, string checkpointFile, string publicKeyFile,
        TextWriter output, TextWriter error)
    {
        string pem;
        try { pem = File.ReadAllText(publicKeyFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error.WriteLine($"cannot read the public key {publicKeyFile}: {e.Message}");
            return 2;
        }
        if (Signing.ReleaseSigner.KeyIdOf(pem) is not { } keyId)
        {
            error.WriteLine($"--public-key {publicKeyFile} is not a P-256 \"PUBLIC KEY\" PEM");
            return 2;
        }
        IReadOnlyList<(long Line, System.Text.Json.Nodes.JsonNode? Node, string? Error)> checkpoints;
        try { checkpoints = CheckpointVerifier.ReadFile(checkpointFile); }
        catch (CheckpointFileException e)
        {
            error.WriteLine(e.Message);
            return 2;
        }

        int code = VerifyAudit(file, anchor, output, error);
        if (code == 2) return 2;
        var result = CheckpointVerifier.Verify(file, checkpoints, pem);
        if (result.Checkpoints.Count == 0)
        {
            output.WriteLine($"checkpoints {checkpointFile}: FAILS: the file holds no checkpoint");
            return 1;
        }
        int failed = result.Checkpoints.Count(c => !c.Ok);
        output.WriteLine($"checkpoints {checkpointFile}: {result.Checkpoints.Count} checked with key {keyId}, "
            + (failed == 0 ? "all hold" : $"{failed} FAIL"));
        foreach (var c in result.Checkpoints)
        {
            var what = c.Checkpoint is { } cp ? $"seq {cp.Seq} ({cp.City}, signed {cp.Time.UtcDateTime.ToString(AuditCheckpoint.TimeFormat, System.Globalization.CultureInfo.InvariantCulture)})" : "not a checkpoint";
            output.WriteLine($"  line {c.Line}: {what}: {(c.Ok ? "ok" : "FAILS")}: {c.Detail}");
        }
        return code == 0 && result.Ok ? 0 : 1;
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
