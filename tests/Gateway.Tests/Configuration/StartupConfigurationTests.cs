using System.Diagnostics;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Configuration;

/// <summary>
/// The gateway binary started with a wrong setting stops at once, exit code 2, with a message that
/// names the configuration key. Runs the real executable, as an operator would.
/// </summary>
public sealed class StartupConfigurationTests
{
    private static (int ExitCode, string Output) RunGateway(TempDir dir, params string[] args) =>
        GatewayCli.Run(dir, ["--urls", "http://127.0.0.1:0", .. args]);

    private static string ValidRegistry(TempDir dir) => Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));

    [Fact]
    public void Missing_broker_url_names_the_key()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Mqtt:Url=", "--Gateway:Registry:Path=" + ValidRegistry(dir));
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Mqtt:Url", output);
        Assert.Contains("broker URL is missing", output);
    }

    [Fact]
    public void Broker_url_with_an_unknown_scheme_names_the_key()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Mqtt:Url=http://broker:1883", "--Gateway:Registry:Path=" + ValidRegistry(dir));
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Mqtt:Url", output);
    }

    [Fact]
    public void Unreadable_registry_names_the_key()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + dir.File("no-such-file.json"));
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Path", output);
        Assert.Contains("no-such-file.json", output);
    }

    [Fact]
    public void Registry_with_errors_names_the_key_and_the_entry()
    {
        using var dir = new TempDir("cfg");
        File.WriteAllText(dir.File("devices.json"),
            """{"city":"lumen","deviceTypes":{"t":{"domain":"weather","fields":{}}},"devices":{"d1":{"type":"missing","district":"x"}}}""");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + dir.File("devices.json"));
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Path", output);
        Assert.Contains("deviceTypes.t.domain", output);
        Assert.Contains("devices.d1.type", output);
    }

    [Fact]
    public void Missing_second_registry_file_names_its_key_and_path()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir),
            "--Gateway:Registry:Paths:0=" + dir.File("own-devices.json"));
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Paths:0: cannot read the device registry", output);
        Assert.Contains(dir.File("own-devices.json"), output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public void Device_in_two_registry_files_names_the_id_and_both_files()
    {
        using var dir = new TempDir("cfg");
        var own = Registries.Write(Registries.Environment("env-0042", "env-0001"), dir.File("own-devices.json"));
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Registry:Paths:0=" + own);
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Paths:0", output);
        Assert.Contains("'env-0001'", output);
        Assert.DoesNotContain("'env-0042'", output);
        Assert.Contains(dir.File("devices.json"), output);
        Assert.Contains(own, output);
    }

    [Fact]
    public void Without_registry_settings_devices_json_of_the_working_folder_is_read()
    {
        using var dir = new TempDir("cfg");
        // Another setting is wrong, so the gateway stops after checking the registry.
        var (code, output) = RunGateway(dir, "--Gateway:Influx:Version=v9");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Path: cannot read the device registry 'devices.json'", output);

        ValidRegistry(dir);
        (code, output) = RunGateway(dir, "--Gateway:Influx:Version=v9");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Influx:Version", output);
        Assert.DoesNotContain("Gateway:Registry", output);
    }

    [Fact]
    public void With_only_registry_paths_devices_json_is_not_read()
    {
        using var dir = new TempDir("cfg");
        // devices.json is the file of the default, not a registry here: broken, it would be refused.
        File.WriteAllText(dir.File("devices.json"), "not a registry");
        var own = Registries.Write(Registries.Environment("env-0042"), dir.File("own-devices.json"));
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Paths:0=" + own, "--Gateway:Influx:Version=v9");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Influx:Version", output);
        Assert.DoesNotContain("Gateway:Registry", output);
    }

    [Fact]
    public void Registry_paths_that_are_empty_or_repeated_name_their_keys()
    {
        using var dir = new TempDir("cfg");
        var registry = ValidRegistry(dir);
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + registry,
            "--Gateway:Registry:Paths:0=", "--Gateway:Registry:Paths:1=" + registry);
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Paths:0: empty", output);
        Assert.Contains("Gateway:Registry:Paths:1: '" + registry + "' is already given as Gateway:Registry:Path", output);
    }

    [Fact]
    public void Quarantine_rotation_settings_name_their_keys()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir),
            "--Gateway:Quarantine:MaxFileBytes=1000", "--Gateway:Quarantine:MaxFiles=0");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Quarantine:MaxFileBytes: 1000 is too small", output);
        Assert.Contains("Gateway:Quarantine:MaxFiles: 0", output);
    }

    [Fact]
    public void Unknown_payload_format_names_the_route_key()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Routes:1:Format=protobuf");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Routes:1:Format", output);
        Assert.Contains("protobuf", output);
    }

    [Fact]
    public void Several_errors_are_reported_together()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=", "--Gateway:Influx:Version=v9", "--Gateway:Routes:0:Qos=7");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Registry:Path", output);
        Assert.Contains("Gateway:Influx:Version", output);
        Assert.Contains("Gateway:Routes:0:Qos", output);
    }

    [Theory]
    [InlineData("city/ingest", "'/'")]
    [InlineData("ingest+", "'+'")]
    [InlineData("#", "'#'")]
    [InlineData("  ", "white space")]
    public void Invalid_shared_group_names_the_key(string group, string because)
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Mqtt:SharedGroup=" + group);
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Mqtt:SharedGroup", output);
        Assert.Contains(because, output);
    }

    [Fact]
    public void A_route_that_is_already_shared_conflicts_with_the_shared_group()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Mqtt:SharedGroup=ingest",
            "--Gateway:Routes:0:Filter=$share/other/city/json/#");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Routes:0:Filter", output);
        Assert.Contains("'city/json/#'", output);
    }

    [Fact]
    public void A_shared_route_filter_without_a_filter_after_the_group_names_the_route_key()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Routes:0:Filter=$share/ingest");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Routes:0:Filter", output);
    }

    /// <summary>Two instances given one journal folder: the second stops before it touches the journal.</summary>
    [Fact]
    public void A_journal_held_by_another_process_stops_the_gateway_and_names_the_key()
    {
        using var dir = new TempDir("cfg");
        var journal = dir.File("journal");
        using var held = new CityGateway.Journal.FileJournal(new CityGateway.Journal.JournalOptions { Path = journal },
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Journal:Path=" + journal);
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Journal:Path", output);
        Assert.Contains("in use by another gateway process", output);
        Assert.DoesNotContain("   at ", output); // a message, not a stack trace
    }

    [Theory]
    [InlineData("operator-port", "is not one address with a port other than 0")]
    [InlineData("http://127.0.0.1:0", "is not one address with a port other than 0")]
    [InlineData("http://127.0.0.1:8081;http://127.0.0.1:8082", "is not one address")]
    public void Invalid_operator_listener_names_the_key(string listen, string because)
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir), "--Gateway:Operations:Listen=" + listen);
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Operations:Listen", output);
        Assert.Contains(because, output);
    }

    [Fact]
    public void Operator_listener_on_the_partner_port_names_the_key()
    {
        using var dir = new TempDir("cfg");
        int port = ServiceProcess.FreePort();
        var (code, output) = RunGateway(dir, "--urls", $"http://127.0.0.1:{port}", "--Gateway:Registry:Path=" + ValidRegistry(dir),
            $"--Gateway:Operations:Listen=http://127.0.0.1:{port}");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Operations:Listen", output);
        Assert.Contains("a port of its own", output);
    }

    [Fact]
    public void Invalid_otlp_settings_name_the_keys()
    {
        using var dir = new TempDir("cfg");
        var (code, output) = RunGateway(dir, "--Gateway:Registry:Path=" + ValidRegistry(dir),
            "--Gateway:Telemetry:OtlpEndpoint=collector:4317", "--Gateway:Telemetry:OtlpProtocol=udp");
        Assert.Equal(2, code);
        Assert.Contains("Gateway:Telemetry:OtlpEndpoint", output);
        Assert.Contains("Gateway:Telemetry:OtlpProtocol", output);
    }
}
