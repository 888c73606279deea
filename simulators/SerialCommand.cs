using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using CityGateway.Cli;

namespace CityGateway.Simulators;

/// <summary>The console front end of the serial mode (<c>Simulators serial ...</c>).</summary>
public static class SerialCommand
{
    private const string Notes = """
        Without --duration or --messages-per-device the simulator runs until Ctrl-C. When the port
        disappears, the lines falling due are counted as lost and the port is reopened every 200 ms.
        Exit codes: 0 every line written, 1 the port could not be opened or lines were lost,
        2 invalid options.
        """;

    /// <summary>The "serial" command under "Simulators".</summary>
    public static Command Create() => Build().Command;

    private static (Command Command, SerialCommandLine Line) Build()
    {
        var line = new SerialCommandLine();
        var command = new Command("serial", """
            City sensor simulator, serial mode: writes line-delimited readings of instruments sharing a
            serial line to a tty (a serial device or one end of a pseudo-terminal pair).
            """);
        foreach (var option in line.All) command.Options.Add(option);
        command.SetAction((result, _) => RunSerialAsync(result, line));
        CommandLineRunner.SetEpilogue(command, Notes);
        return (command, line);
    }

    /// <param name="args">The arguments after "serial".</param>
    public static Task<int> RunAsync(string[] args) => SimulatorCommand.RunAsync(["serial", .. args]);

    private static async Task<int> RunSerialAsync(ParseResult result, SerialCommandLine line)
    {
        SerialParsedCommand parsed;
        try
        {
            parsed = line.Bind(result);
        }
        catch (UsageException e)
        {
            return CommandLineRunner.ReportUsage(result, result.InvocationConfiguration.Error, withHelp: false, [e.Message]);
        }
        var o = parsed.Options;

        if (parsed.RegistryOnly)
        {
            var registry = SerialSimulator.BuildRegistry(o);
            if (string.IsNullOrEmpty(o.RegistryPath))
                Console.WriteLine(FleetSimulator.SerializeRegistry(registry));
            else
            {
                FleetSimulator.WriteRegistry(registry, o.RegistryPath);
                Console.Error.WriteLine($"registry with {registry.Devices.Count} devices written to {o.RegistryPath}");
            }
            return SimulatorCommand.ExitOk;
        }

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // First Ctrl-C stops the run cleanly; a second one ends the process at once.
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine();
            Console.Error.WriteLine("stopping (Ctrl-C again to quit now)");
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            cts.Cancel();
        });

        o.Log = msg => Console.Error.WriteLine(msg);
        var c = CultureInfo.InvariantCulture;
        var type = SerialDeviceTypes.ForFormat(o.NormalisedFormat());
        string limit = o.MessagesPerDevice is { } m ? string.Create(c, $", {m} readings per device") : "";
        if (o.Duration is { } d) limit += string.Create(c, $", for {d.TotalSeconds:0.###} s");
        string extras = (o.Noise > 0 ? string.Create(c, $", noise {o.Noise:0.###}") : "")
            + (o.SplitWrites > 0 ? string.Create(c, $", split writes {o.SplitWrites:0.###}") : "")
            + (o.Throttle ? string.Create(c, $", throttled to {o.BaudRate / 10} B/s") : "");
        Console.Error.WriteLine(string.Create(c,
            $"simulating {o.Devices} {type.Name} devices ({o.NormalisedFormat()} lines{(o.Checksum ? " with checksums" : "")}) at {(o.Rate > 0 ? $"{o.Rate} lines/s" : "full speed")}{limit}{extras} -> {o.Port}"));
        if (!string.IsNullOrEmpty(o.RegistryPath)) Console.Error.WriteLine($"registry: {o.RegistryPath}");

        SerialSimulationReport report;
        try
        {
            report = await SerialSimulator.RunAsync(o, null, cts.Token);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return SimulatorCommand.ExitFailed;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        Console.Write(report.ToSummary());
        if (!string.IsNullOrEmpty(o.ReportPath)) Console.WriteLine($"  report        {o.ReportPath}");
        return report.LinesLost > 0 ? SimulatorCommand.ExitFailed : SimulatorCommand.ExitOk;
    }

    /// <summary>Parses the arguments after "serial". Throws <see cref="UsageException"/> for unknown or malformed options.</summary>
    public static SerialParsedCommand Parse(IReadOnlyList<string> args)
    {
        var (command, line) = Build();
        var root = CommandLineRunner.Root("Simulators", "");
        root.Subcommands.Add(command);
        var result = CommandLineRunner.Parse(root, ["serial", .. args]);
        if (result.Errors.Count > 0) throw new UsageException(string.Join("; ", result.Errors.Select(e => e.Message).Distinct()));
        // --help replaces the command's own action.
        if (result.Action != command.Action) return new SerialParsedCommand(new SerialSimulatorOptions { Progress = true }) { Help = true };
        return line.Bind(result);
    }

    /// <summary>The options of the serial mode's command line (one set per parser: options know their commands).</summary>
    private sealed class SerialCommandLine
    {
        public readonly Option<string> Port = CliOptions.Text("--port", "PATH", "tty to write to, e.g. /dev/ttyUSB0 or a socat pty link");
        public readonly Option<string> Format = CliOptions.Choice("--format", "kv|csv|jsonl",
            "kv: water-quality instrument (wq-s001...), csv: traffic counter (trf-s001...), jsonl: air-quality station (env-s001...) (default kv)",
            [.. SerialSimulatorOptions.AllFormats]);
        public readonly Option<int> Devices = CliOptions.Int("--devices", "N", "devices taking turns on the line (default 5, at most 999)", min: 1);
        public readonly Option<double> Rate = CliOptions.Number("--rate", "R", "lines per second; 0 = as fast as possible (default 10)");
        public readonly Option<int> Baud = CliOptions.Int("--baud", "N", "line speed set on the tty (default 115200)", min: 50);
        public readonly Option<bool> Throttle = CliOptions.Flag("--throttle", "pace the bytes to an 8N1 line at --baud (baud/10 bytes per second)");
        public readonly Option<int> MessagesPerDevice = CliOptions.Int("--messages-per-device", "N", "stop each device after N readings (intact or damaged)", min: 1);
        public readonly Option<double> Duration = CliOptions.Number("--duration", "SECONDS", "stop after this many seconds", max: 1e9, positive: true);
        public readonly Option<int> Seed = CliOptions.Int("--seed", "N", "random seed: devices, values, noise and split writes (default 42)");
        public readonly Option<bool> NoChecksum = CliOptions.Flag("--no-checksum", "no *hh checksum after the lines");
        public readonly Option<string> LineEnding = new("--line-ending")
        {
            HelpName = "crlf|lf",
            Description = "line ending (default crlf)",
            CustomParser = r => r.Tokens[0].Value.ToLowerInvariant() switch
            {
                "crlf" or "\\r\\n" => SerialSimulatorOptions.Crlf,
                "lf" or "\\n" => SerialSimulatorOptions.Lf,
                var v => Fail(r, $"--line-ending must be crlf or lf, not '{v}'"),
            },
        };
        public readonly Option<double> Noise = CliOptions.Number("--noise", "F",
            "fraction of lines corrupted, 0..1 (default 0; needs checksums): bad_checksum, garbage_inside, garbage_line, truncated", max: 1);
        public readonly Option<double> SplitWrites = CliOptions.Number("--split-writes", "F", "fraction of intact lines written in 2-4 pieces (default 0)", max: 1);
        public readonly Option<DateTimeOffset> CurveTime = SimulatorCommand.CurveTimeOption(
            "evaluate the daily profiles at this fixed local time instead of now: HH:mm (today) or an ISO 8601 date and time");
        public readonly Option<double> OpenTimeout = CliOptions.Number("--open-timeout", "SECONDS",
            "keep trying to open the port this long at the start (default 10)", max: 86400);
        public readonly Option<string> City = CliOptions.Text("--city", "NAME", "city id in the registry (default lumen)", nonEmpty: false);
        public readonly Option<List<string>> Districts = SimulatorCommand.DistrictsOption();
        public readonly Option<(double Latitude, double Longitude)> Centre = SimulatorCommand.CentreOption();
        public readonly Option<string> Registry = CliOptions.Text("--registry", "FILE", "write the device registry here before writing");
        public readonly Option<string> Report = CliOptions.Text("--report", "FILE", "write the run report here as JSON");
        public readonly Option<bool> RegistryOnly = CliOptions.Flag("--registry-only", "write the registry (to --registry FILE, else stdout) and exit");
        public readonly Option<bool> NoProgress = CliOptions.Flag("--no-progress", "no live progress line on stderr");

        public Option[] All => [Port, Format, Devices, Rate, Baud, Throttle, MessagesPerDevice, Duration, Seed, NoChecksum, LineEnding, Noise,
            SplitWrites, CurveTime, OpenTimeout, City, Districts, Centre, Registry, Report, RegistryOnly, NoProgress];

        /// <summary>The options of a parsed command line; what is not given keeps the default of <see cref="SerialSimulatorOptions"/>.</summary>
        public SerialParsedCommand Bind(ParseResult r)
        {
            var o = new SerialSimulatorOptions { Progress = !r.GetValue(NoProgress), Throttle = r.GetValue(Throttle), Checksum = !r.GetValue(NoChecksum) };
            var result = new SerialParsedCommand(o) { RegistryOnly = r.GetValue(RegistryOnly) };
            if (r.Given(Port, out var port)) o.Port = port;
            if (r.Given(Format, out var format)) o.Format = format;
            if (r.Given(Devices, out var devices)) o.Devices = devices;
            if (r.Given(Rate, out var rate)) o.Rate = rate;
            if (r.Given(Baud, out var baud)) o.BaudRate = baud;
            if (r.Given(MessagesPerDevice, out var messages)) o.MessagesPerDevice = messages;
            if (r.Given(Duration, out var duration)) o.Duration = TimeSpan.FromSeconds(duration);
            if (r.Given(Seed, out var seed)) o.Seed = seed;
            if (r.Given(LineEnding, out var lineEnding)) o.LineEnding = lineEnding;
            if (r.Given(Noise, out var noise)) o.Noise = noise;
            if (r.Given(SplitWrites, out var splitWrites)) o.SplitWrites = splitWrites;
            if (r.Given(CurveTime, out var curveTime)) o.CurveTime = curveTime;
            if (r.Given(OpenTimeout, out var openTimeout)) o.OpenTimeout = TimeSpan.FromSeconds(openTimeout);
            if (r.Given(City, out var city)) o.City = city;
            if (r.Given(Districts, out var districts)) o.Districts = districts;
            if (r.Given(Centre, out var centre)) (o.CentreLatitude, o.CentreLongitude) = centre;
            if (r.Given(Registry, out var registry)) o.RegistryPath = registry;
            if (r.Given(Report, out var report)) o.ReportPath = report;
            try { o.Validate(needPort: !result.RegistryOnly); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
            return result;
        }

        private static string Fail(System.CommandLine.Parsing.ArgumentResult r, string message)
        {
            r.AddError(message);
            return "";
        }
    }
}

/// <summary>The outcome of parsing the serial mode's command line.</summary>
public sealed class SerialParsedCommand(SerialSimulatorOptions options)
{
    public SerialSimulatorOptions Options { get; } = options;
    public bool Help { get; set; }
    public bool RegistryOnly { get; set; }
}
