using System.CommandLine;
using CityGateway.Cli;
using CityGateway.Simulators;

namespace CityGateway.Tests.Cli;

/// <summary>
/// The simulators' command lines, as the deploy scripts, the compose file and the README pass them:
/// every option name still parses to the same setting, --help lists them, wrong ones exit 2.
/// </summary>
public sealed class SimulatorCommandLineTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(Command root, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CommandLineRunner.RunAsync(root, args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static readonly string[] FleetOptions =
    [
        "--broker", "--username", "--password", "--client-id", "--city", "--traffic", "--water", "--environment", "--formats", "--rate",
        "--duration", "--messages-per-device", "--seed", "--qos", "--curve-time", "--max-in-flight", "--connect-timeout", "--registry",
        "--report", "--registry-only", "--no-progress", "--districts", "--centre", "--backfill", "--backfill-interval", "--backfill-qos",
    ];

    private static readonly string[] SerialOptions =
    [
        "--port", "--format", "--devices", "--rate", "--baud", "--throttle", "--messages-per-device", "--duration", "--seed", "--no-checksum",
        "--line-ending", "--noise", "--split-writes", "--curve-time", "--open-timeout", "--city", "--districts", "--centre", "--registry", "--report", "--registry-only",
        "--no-progress",
    ];

    [Fact]
    public async Task Help_of_the_fleet_and_the_serial_mode_exits_0_and_lists_every_option()
    {
        var fleet = await RunAsync(SimulatorCommand.CreateRoot(), "--help");
        Assert.Equal(0, fleet.Code);
        Assert.Equal("", fleet.Err);
        foreach (var option in FleetOptions) Assert.Contains(option + " ", fleet.Out);
        Assert.Contains("serial", fleet.Out);
        Assert.Contains("Exit codes:", fleet.Out);

        var serial = await RunAsync(SimulatorCommand.CreateRoot(), "serial", "-h");
        Assert.Equal(0, serial.Code);
        Assert.Contains("Simulators serial [options]", serial.Out);
        foreach (var option in SerialOptions) Assert.Contains(option + " ", serial.Out);
        Assert.DoesNotContain("--broker", serial.Out);
    }

    [Theory]
    [InlineData("unknown option", new[] { "--bogus" }, "'--bogus'")]
    [InlineData("a value that is no number", new[] { "--rate", "fast" }, "--rate expects a number, not 'fast'")]
    [InlineData("out of range", new[] { "--qos", "3" }, "--qos must be at most 2, not 3")]
    [InlineData("missing value", new[] { "--broker" }, "'--broker'")]
    [InlineData("option where a value belongs", new[] { "--registry", "--registry-only" }, "--registry needs a value")]
    [InlineData("a value after a switch", new[] { "--no-progress", "yes" }, "'yes'")]
    [InlineData("password without user", new[] { "--password", "secret", "--registry-only" }, "a password was given without --username")]
    [InlineData("serial without a port", new[] { "serial" }, "no port given")]
    [InlineData("serial format", new[] { "serial", "--port", "/dev/null", "--format", "xml" }, "--format must be one of kv, csv, jsonl, not 'xml'")]
    [InlineData("fleet option in serial mode", new[] { "serial", "--port", "/dev/null", "--traffic", "3" }, "'--traffic'")]
    public async Task A_wrong_command_line_exits_2_and_says_what_is_wrong(string what, string[] args, string message)
    {
        _ = what;
        var (code, output, error) = await RunAsync(SimulatorCommand.CreateRoot(), args);
        Assert.Equal(SimulatorCommand.ExitUsage, code);
        Assert.Equal("", output);
        Assert.Contains(message, error);
        Assert.Contains("--help' for the list of options", error);
    }

    [Fact]
    public void The_deploy_scripts_command_lines_parse_to_the_settings_they_name()
    {
        // deploy/run-local.sh and deploy/compose/docker-compose.yml, registry then fleet.
        var registry = SimulatorCommand.Parse(["--broker", "mqtt://127.0.0.1:18830", "--traffic", "20", "--water", "21", "--environment", "22",
            "--formats", "json,senml", "--seed", "7", "--registry", "/tmp/devices.json", "--registry-only"]);
        Assert.True(registry.RegistryOnly);
        var o = registry.Options;
        Assert.Equal("mqtt://127.0.0.1:18830", o.BrokerUrl);
        Assert.Equal((20, 21, 22), (o.TrafficDevices, o.WaterDevices, o.EnvironmentDevices));
        Assert.Equal(["json", "senml"], o.Formats);
        Assert.Equal(7, o.Seed);
        Assert.Equal("/tmp/devices.json", o.RegistryPath);

        var fleet = SimulatorCommand.Parse(["--broker", "mqtt://mosquitto:1883", "--username", "sim", "--rate", "12.5", "--no-progress",
            "--report", "r.json", "--duration=30", "--messages-per-device", "5", "--qos", "0", "--max-in-flight", "10",
            "--connect-timeout", "3", "--client-id", "sim-1", "--curve-time", "2025-06-02T08:15:00+02:00"], passwordFromEnvironment: "from-env");
        o = fleet.Options;
        Assert.False(fleet.RegistryOnly);
        Assert.False(o.Progress);
        Assert.Equal(("sim", "from-env"), (o.Username, o.Password));
        Assert.Equal(12.5, o.Rate);
        Assert.Equal(TimeSpan.FromSeconds(30), o.Duration);
        Assert.Equal(5, o.MessagesPerDevice);
        Assert.Equal((0, 10), (o.Qos, o.MaxInFlight));
        Assert.Equal(TimeSpan.FromSeconds(3), o.ConnectTimeout);
        Assert.Equal("sim-1", o.ClientId);
        Assert.Equal(new DateTimeOffset(2025, 6, 2, 8, 15, 0, TimeSpan.FromHours(2)), o.CurveTime);
        Assert.Equal("r.json", o.ReportPath);

        // What is not given keeps the simulator's defaults.
        var defaults = SimulatorCommand.Parse([]).Options;
        var fresh = new SimulatorOptions();
        Assert.Equal((fresh.BrokerUrl, fresh.TrafficDevices, fresh.Rate, fresh.Seed, fresh.Qos), (defaults.BrokerUrl, defaults.TrafficDevices, defaults.Rate, defaults.Seed, defaults.Qos));
        Assert.Null(defaults.Duration);
        Assert.True(defaults.Progress);
        Assert.True(SimulatorCommand.Parse(["--help"]).Help);
    }

    [Fact]
    public void The_serial_modes_command_line_parses_to_the_settings_it_names()
    {
        // simulators/README.md's serial example and the fault tests' options.
        var parsed = SerialCommand.Parse(["--port", "/tmp/ttyV0", "--format", "CSV", "--devices", "3", "--messages-per-device", "100",
            "--rate", "50", "--noise", "0.1", "--split-writes", "0.2", "--baud", "9600", "--throttle", "--line-ending", "lf",
            "--open-timeout", "0", "--seed", "-3", "--no-progress", "--report", "serial.json"]);
        var o = parsed.Options;
        Assert.Equal(("/tmp/ttyV0", "csv", 3, 100), (o.Port, o.Format, o.Devices, o.MessagesPerDevice));
        Assert.Equal((50.0, 0.1, 0.2), (o.Rate, o.Noise, o.SplitWrites));
        Assert.Equal((9600, true, SerialSimulatorOptions.Lf), (o.BaudRate, o.Throttle, o.LineEnding));
        Assert.Equal(TimeSpan.Zero, o.OpenTimeout);
        Assert.Equal(-3, o.Seed);
        Assert.False(o.Progress);
        Assert.True(o.Checksum);
        Assert.Equal("serial.json", o.ReportPath);

        Assert.False(SerialCommand.Parse(["--port", "/tmp/ttyV0", "--no-checksum"]).Options.Checksum);
        Assert.True(SerialCommand.Parse(["--registry-only"]).RegistryOnly);
        Assert.Throws<UsageException>(() => SerialCommand.Parse(["--port", "/tmp/ttyV0", "--noise", "1.5"]));
        Assert.True(SerialCommand.Parse(["--help"]).Help);
    }
}
