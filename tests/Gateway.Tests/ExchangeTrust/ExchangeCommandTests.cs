using System.Diagnostics;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ExchangeTrust;

public sealed class ExchangeCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ExchangeCommands.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Keygen_writes_a_private_key_file_with_mode_0600_and_prints_the_public_key()
    {
        using var dir = new TempDir("exchange-cmd");
        var path = dir.File("city-key.pem");
        var (code, output, _) = Run("keygen", "--out", path);
        Assert.Equal(0, code);

        var pem = File.ReadAllText(path);
        Assert.StartsWith("-----BEGIN " + "PRIVATE KEY-----", pem);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        using var signer = ReleaseSigner.FromPemFile(path);
        Assert.Contains("key id: " + signer.KeyId, output);
        Assert.Contains(signer.PublicKeyPem, output);
        Assert.DoesNotContain("PRIVATE KEY", output);

        // Never overwritten.
        var again = Run("keygen", "--out", path);
        Assert.Equal(1, again.Code);
        Assert.Contains("exists", again.Err);
        Assert.Equal(pem, File.ReadAllText(path));

        Assert.Equal(2, Run("keygen").Code);
        Assert.Equal(2, Run("keygen", "--out").Code);
        Assert.Equal(2, Run("keygen", "--out", dir.File("x.pem"), "--force").Code);
        Assert.Equal(1, Run("keygen", "--out", dir.File("no/such/dir/key.pem")).Code);
    }

    [Fact]
    public void Verify_audit_exits_0_when_intact_1_when_broken_2_on_bad_arguments()
    {
        using var dir = new TempDir("exchange-cmd");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 12);
        var head = AuditLog.Verify(path).Head;

        var intact = Run("verify-audit", "--file", path);
        Assert.Equal(0, intact.Code);
        Assert.Contains($"intact, 12 entries, head {head}", intact.Out);
        Assert.Equal(0, Run("verify-audit", "--file", path, "--anchor", head.ToString()).Code);

        var lines = File.ReadAllLines(path).ToList();
        lines.RemoveAt(6);
        var broken = dir.File("broken.jsonl");
        File.WriteAllLines(broken, lines);
        var result = Run("verify-audit", "--file", broken);
        Assert.Equal(1, result.Code);
        Assert.Contains("BROKEN at line 7 (seq 8)", result.Out);
        Assert.Contains("SeqGap: expected seq 7, found 8", result.Out);
        Assert.Contains("6 entries", result.Out);

        var shortened = dir.File("short.jsonl");
        File.WriteAllLines(shortened, File.ReadAllLines(path).Take(11));
        Assert.Equal(0, Run("verify-audit", "--file", shortened).Code);
        var anchored = Run("verify-audit", "--file", shortened, "--anchor", head.ToString());
        Assert.Equal(1, anchored.Code);
        Assert.Contains("MissingAnchor", anchored.Out);

        Assert.Equal(2, Run("verify-audit", "--file", dir.File("absent.jsonl")).Code);
        Assert.Equal(2, Run("verify-audit").Code);
        Assert.Equal(2, Run("verify-audit", "--file", path, "--anchor", "12:XYZ").Code);
        Assert.Equal(2, Run("verify-audit", "--file", path, "--bogus").Code);
    }

    [Fact]
    public void Transparency_prints_the_totals_as_text_or_json()
    {
        using var dir = new TempDir("exchange-cmd");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 12);
        // Entries 0, 3, 6, 9 are releases (100 + i rows, ε 0.25; ghent for even i, lyon for odd); 1, 4, 7, 10 pulls.
        var text = Run("transparency", "--file", path);
        Assert.Equal(0, text.Code);
        var rows = text.Out.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal(new[] { "partner", "releases", "rows", "epsilon", "pulls", "first", "last" }, rows[1]);
        Assert.Equal(new[] { "ghent", "2", "206", "0.5", "2", "2025-06-01T08:00:00.000Z", "2025-06-01T08:00:10.000Z" }, rows[2]);
        Assert.Equal(new[] { "lyon", "2", "212", "0.5", "2", "2025-06-01T08:00:01.000Z", "2025-06-01T08:00:09.000Z" }, rows[3]);

        var json = Run("transparency", "--file", path, "--json");
        Assert.Equal(0, json.Code);
        var parsed = JsonNode.Parse(json.Out)!;
        Assert.True((bool)parsed["intact"]!);
        Assert.Equal(206, (long)parsed["partners"]![0]!["rowsReleased"]!);

        var lines = File.ReadAllLines(path);
        lines[8] = lines[8].Replace("\"a\"", "\"b\"");
        File.WriteAllLines(path, lines);
        var broken = Run("transparency", "--file", path);
        Assert.Equal(1, broken.Code);
        Assert.Contains("BROKEN", broken.Out);
        Assert.Equal(2, Run("transparency").Code);
        Assert.Equal(2, Run("transparency", "--file", dir.File("absent.jsonl")).Code);
    }

    [Fact]
    public void Repair_audit_moves_a_torn_last_line_aside()
    {
        using var dir = new TempDir("exchange-cmd");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 4);
        File.AppendAllText(path, "{\"seq\":5,\"ti");
        Assert.Equal(1, Run("verify-audit", "--file", path).Code);

        var repair = Run("repair-audit", "--file", path);
        Assert.Equal(0, repair.Code);
        Assert.Contains("moved 12 bytes", repair.Out);
        Assert.Equal(0, Run("verify-audit", "--file", path).Code);
        Assert.Single(Directory.GetFiles(dir.Path, "audit.jsonl.torn-*"));

        var lines = File.ReadAllLines(path);
        lines[1] = lines[1].Replace("pull", "push");
        File.WriteAllLines(path, lines);
        Assert.Equal(1, Run("repair-audit", "--file", path).Code);
        Assert.Equal(2, Run("repair-audit").Code);
    }

    [Fact]
    public void The_dispatcher_rejects_unknown_commands()
    {
        Assert.Equal(2, Run().Code);
        var unknown = Run("launch");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("unknown exchange command", unknown.Err);
        Assert.Contains("verify-audit", unknown.Err);
        Assert.Equal(0, Run("help").Code);
    }

    /// <summary>The real executable: "Gateway exchange ..." runs the command, not the host.</summary>
    [Fact]
    public void The_gateway_executable_runs_exchange_commands_instead_of_the_host()
    {
        using var dir = new TempDir("exchange-cmd");
        var log = AuditTestLogs.Write(dir.File("audit.jsonl"), 3);

        var keygen = RunGateway(dir, "exchange", "keygen", "--out", "city-key.pem");
        Assert.Equal(0, keygen.Code);
        Assert.Contains("key id: ", keygen.Output);
        Assert.True(File.Exists(dir.File("city-key.pem")));

        Assert.Equal(0, RunGateway(dir, "exchange", "verify-audit", "--file", log).Code);
        File.AppendAllText(log, "{");
        var broken = RunGateway(dir, "exchange", "verify-audit", "--file", log);
        Assert.Equal(1, broken.Code);
        Assert.Contains("TornLine", broken.Output);
    }

    private static (int Code, string Output) RunGateway(TempDir dir, params string[] args) => GatewayCli.Run(dir, args);
}
