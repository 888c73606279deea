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
    public const string VerifyUsage = "Gateway exchange verify-audit --file PATH [--anchor SEQ:HASH]";
    public const string TransparencyUsage = "Gateway exchange transparency --file PATH [--json]";
    public const string RepairUsage = "Gateway exchange repair-audit --file PATH";

    /// <summary>Checks the chain; prints "intact: …" or where it breaks.</summary>
    public static int VerifyAudit(string[] args, TextWriter output, TextWriter error)
    {
        if (!Arguments.TryParse(args, ["--file", "--anchor"], [], out var values, out var problem) || !values.TryGetValue("--file", out var file))
            return Usage(error, problem ?? "--file is required", VerifyUsage);
        AuditHead? anchor = null;
        if (values.TryGetValue("--anchor", out var anchorText))
        {
            if (!AuditHead.TryParse(anchorText, out var parsed)) return Usage(error, $"--anchor {anchorText} is not SEQ:HASH (64 lower-case hex digits)", VerifyUsage);
            anchor = parsed;
        }

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
    public static int Transparency(string[] args, TextWriter output, TextWriter error)
    {
        if (!Arguments.TryParse(args, ["--file"], ["--json"], out var values, out var problem) || !values.TryGetValue("--file", out var file))
            return Usage(error, problem ?? "--file is required", TransparencyUsage);
        var summary = AuditLog.Summarise(file);
        if (summary.Verification.FirstBreak?.Problem == AuditProblem.Unreadable)
        {
            error.WriteLine($"cannot read the audit log {file}: {summary.Verification.FirstBreak.Detail}");
            return 2;
        }
        if (values.ContainsKey("--json"))
            output.WriteLine(summary.ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        else
            output.Write(summary.ToText());
        return summary.Verification.Ok ? 0 : 1;
    }

    /// <summary>Moves a torn last line aside; leaves any other damage alone.</summary>
    public static int RepairAudit(string[] args, TextWriter output, TextWriter error)
    {
        if (!Arguments.TryParse(args, ["--file"], [], out var values, out var problem) || !values.TryGetValue("--file", out var file))
            return Usage(error, problem ?? "--file is required", RepairUsage);
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

    private static int Usage(TextWriter error, string problem, string usage)
    {
        error.WriteLine(problem);
        error.WriteLine("usage: " + usage);
        return 2;
    }
}

/// <summary>"--name value" options and "--flag" switches; anything else is an error.</summary>
internal static class Arguments
{
    public static bool TryParse(string[] args, string[] options, string[] flags, out Dictionary<string, string> values, out string? problem)
    {
        values = new Dictionary<string, string>(StringComparer.Ordinal);
        problem = null;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (flags.Contains(a))
            {
                values[a] = "";
            }
            else if (options.Contains(a))
            {
                if (i + 1 >= args.Length) { problem = $"{a} needs a value"; return false; }
                if (values.ContainsKey(a)) { problem = $"{a} is given twice"; return false; }
                values[a] = args[++i];
            }
            else
            {
                problem = $"unknown argument {a}";
                return false;
            }
        }
        return true;
    }
}
