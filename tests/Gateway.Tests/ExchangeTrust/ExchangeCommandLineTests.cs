using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ExchangeTrust;

/// <summary>The exchange commands' command line: help on every command, wrong arguments refused with exit 2.</summary>
public sealed class ExchangeCommandLineTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ExchangeCommands.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static TheoryData<string, string[]> Commands => new()
    {
        { "keygen", ["--out"] },
        { "verify-audit", ["--file", "--anchor", "--checkpoint", "--public-key"] },
        { "transparency", ["--file", "--json"] },
        { "repair-audit", ["--file"] },
        { "issue-key", ["--partner", "--data"] },
        { "revoke-key", ["--key-id", "--data"] },
        { "list-keys", ["--data"] },
        { "trust-partner-key", ["--partner", "--public-key", "--data", "--replace"] },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Help_of_each_command_exits_0_and_lists_its_options(string command, string[] options)
    {
        foreach (var help in new[] { "--help", "-h" })
        {
            var (code, output, error) = Run(command, help);
            Assert.Equal(0, code);
            Assert.Equal("", error);
            Assert.Contains($"Gateway exchange {command} [options]", output);
            foreach (var option in options) Assert.Contains(option + " ", output);
        }
    }

    [Fact]
    public void Help_of_the_exchange_verb_lists_every_command()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        foreach (var command in Commands.Select(row => (string)row[0])) Assert.Contains(command, output);
        Assert.Equal(output, Run("help").Out);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void An_unknown_option_is_refused_with_exit_2_naming_it(string command, string[] options)
    {
        _ = options;
        var (code, output, error) = Run(command, "--bogus");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains("'--bogus'", error);
        Assert.Contains($"Gateway exchange {command} [options]", error);
    }

    [Fact]
    public void A_missing_required_option_or_value_is_refused_with_exit_2_naming_it()
    {
        var missing = Run("issue-key", "--data", "somewhere");
        Assert.Equal(2, missing.Code);
        Assert.Contains("'--partner' is required", missing.Err);

        // Another option where a value belongs is a missing value, not a file called "--json".
        var swallowed = Run("transparency", "--file", "--json");
        Assert.Equal(2, swallowed.Code);
        Assert.Contains("--file needs a value", swallowed.Err);

        var twice = Run("verify-audit", "--file", "a.jsonl", "--file", "b.jsonl");
        Assert.Equal(2, twice.Code);
        Assert.Contains("--file", twice.Err);
    }

    [Fact]
    public void Partner_keys_are_issued_listed_and_revoked_through_the_parsed_commands()
    {
        using var dir = new TempDir("exchange-cli");
        var data = dir.File("exchange");

        var issued = Run("issue-key", "--partner", "harbour-city", "--data", data);
        Assert.Equal(0, issued.Code);
        var id = issued.Out.Split('\n').Single(l => l.StartsWith("key id:", StringComparison.Ordinal))["key id:".Length..].Trim();
        Assert.Contains("partner: harbour-city", issued.Out);
        Assert.True(File.Exists(Path.Combine(data, "partner-keys.json")));

        var listed = Run("list-keys", "--data", data);
        Assert.Equal(0, listed.Code);
        Assert.Contains(id, listed.Out);
        Assert.Contains("active", listed.Out);

        Assert.Equal(0, Run("revoke-key", "--key-id", id, "--data", data).Code);
        Assert.Contains("revoked", Run("list-keys", "--data", data).Out);
        var unknown = Run("revoke-key", "--key-id", "000000000000", "--data", data);
        Assert.Equal(1, unknown.Code);
        Assert.Contains("no key with id", unknown.Err);
    }

    /// <summary>The real executable: help of a command, and a wrong option refused before anything is written.</summary>
    [Fact]
    public void The_gateway_executable_prints_command_help_and_refuses_bad_arguments()
    {
        using var dir = new TempDir("exchange-cli");
        var help = GatewayCli.Run(dir, "exchange", "verify-audit", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--anchor <SEQ:HASH>", help.Output);

        var bad = GatewayCli.Run(dir, "exchange", "keygen", "--out", dir.File("k.pem"), "--force");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("'--force'", bad.Output);
        Assert.False(File.Exists(dir.File("k.pem")));
    }
}
