using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using CityGateway.Cli;
using CityGateway.Simulators;

return await SimulatorCommand.RunAsync(args);

namespace CityGateway.Simulators
{
    /// <summary>The console front end: parses options, runs the fleet, prints the summary.</summary>
    public static class SimulatorCommand
    {
        public const int ExitOk = 0;
        public const int ExitFailed = 1;
        public const int ExitUsage = 2;

        public const string PasswordVariable = "SIMULATOR_MQTT_PASSWORD";

        private const string Notes = """
            Without --duration or --messages-per-device the simulator runs until Ctrl-C.
            Exit codes: 0 all published messages completed, 1 connection error, failed or
            unacknowledged publishes, 2 invalid options.
            """;

        /// <summary>"Simulators [options]" for the MQTT fleet, "Simulators serial ..." for a serial line.</summary>
        public static Command CreateRoot() => Build().Root;

        private static (Command Root, FleetCommandLine Line) Build()
        {
            var line = new FleetCommandLine();
            var root = CommandLineRunner.Root("Simulators", """
                City sensor fleet simulator: publishes traffic, water and environment readings over MQTT
                as flat JSON, SenML, ChirpStack v4 and The Things Stack v3 uplinks.
                "Simulators serial --port PATH" writes line-delimited frames to a tty instead (serial --help).
                """);
            foreach (var option in line.All) root.Options.Add(option);
            root.Subcommands.Add(SerialCommand.Create());
            root.SetAction((result, _) => RunFleetAsync(result, line));
            CommandLineRunner.SetEpilogue(root, Notes);
            return (root, line);
        }

        public static Task<int> RunAsync(string[] args) =>
            CommandLineRunner.RunAsync(CreateRoot(), args, Console.Out, Console.Error);

        private static async Task<int> RunFleetAsync(ParseResult result, FleetCommandLine line)
        {
            ParsedCommand parsed;
            try
            {
                parsed = line.Bind(result, Environment.GetEnvironmentVariable(PasswordVariable));
            }
            catch (UsageException e)
            {
                return CommandLineRunner.ReportUsage(result, result.InvocationConfiguration.Error, withHelp: false, [e.Message]);
            }
            var o = parsed.Options;

            if (parsed.RegistryOnly)
            {
                var registry = FleetSimulator.BuildRegistry(o);
                if (string.IsNullOrEmpty(o.RegistryPath))
                    Console.WriteLine(FleetSimulator.SerializeRegistry(registry));
                else
                {
                    FleetSimulator.WriteRegistry(registry, o.RegistryPath);
                    Console.Error.WriteLine($"registry with {registry.Devices.Count} devices written to {o.RegistryPath}");
                }
                return ExitOk;
            }

            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                // First Ctrl-C stops the run cleanly; a second one ends the process at once.
                if (cts.IsCancellationRequested) return;
                e.Cancel = true;
                Console.Error.WriteLine();
                Console.Error.WriteLine("stopping: waiting for outstanding acknowledgements (Ctrl-C again to quit now)");
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                cts.Cancel();
            });

            o.Log = msg => Console.Error.WriteLine(msg);
            var fleet = FleetSimulator.CreateFleet(o);
            string limit = o.MessagesPerDevice is { } m ? $", {m} messages per device" : "";
            if (o.Duration is { } d) limit += string.Create(CultureInfo.InvariantCulture, $", for {d.TotalSeconds:0.###} s");
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"simulating {fleet.Devices.Count} devices of {o.City} ({o.TrafficDevices} traffic, {o.WaterDevices} water, {o.EnvironmentDevices} environment; formats {string.Join(",", o.Formats)}) at {(o.Rate > 0 ? $"{o.Rate} msg/s" : "full speed")}{limit} -> {o.BrokerUrl}"));
            if (!string.IsNullOrEmpty(o.RegistryPath)) Console.Error.WriteLine($"registry: {o.RegistryPath}");

            SimulationReport report;
            try
            {
                report = await FleetSimulator.RunAsync(o, null, cts.Token);
            }
            catch (SimulatorConnectionException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return ExitFailed;
            }
            catch (InvalidOperationException e) when (e.InnerException is DllNotFoundException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return ExitFailed;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return ExitFailed;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }

            Console.Write(report.ToSummary());
            if (!string.IsNullOrEmpty(o.ReportPath)) Console.WriteLine($"  report        {o.ReportPath}");
            return report.Failed > 0 || report.Unacknowledged > 0 ? ExitFailed : ExitOk;
        }

        /// <summary>Parses the MQTT fleet's command line. Throws <see cref="UsageException"/> for unknown or malformed options.</summary>
        public static ParsedCommand Parse(IReadOnlyList<string> args, string? passwordFromEnvironment = null)
        {
            var (root, line) = Build();
            var result = CommandLineRunner.Parse(root, args);
            if (result.Errors.Count > 0) throw new UsageException(string.Join("; ", result.Errors.Select(e => e.Message).Distinct()));
            if (result.CommandResult.Command != root) throw new UsageException("the serial mode's command line is SerialCommand.Parse's");
            // --help replaces the command's own action.
            if (result.Action != root.Action) return new ParsedCommand(new SimulatorOptions { Progress = true }) { Help = true };
            return line.Bind(result, passwordFromEnvironment);
        }

        /// <summary>--curve-time: HH:mm (today, local time) or an ISO 8601 date and time.</summary>
        internal static Option<DateTimeOffset> CurveTimeOption(string description) => new("--curve-time")
        {
            HelpName = "TIME",
            Description = description,
            CustomParser = r =>
            {
                var v = r.Tokens[0].Value;
                if (TimeOnly.TryParseExact(v, ["H:mm", "HH:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
                    return new DateTimeOffset(DateOnly.FromDateTime(DateTime.Now).ToDateTime(t, DateTimeKind.Local));
                if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var dto))
                    return dto;
                r.AddError($"--curve-time expects HH:mm or an ISO 8601 date and time, not '{v}'");
                return default;
            },
        };

        /// <summary>A duration option: 2h, 90m, 1h30m, 1d, 45s or 00:45:00 (see <see cref="DurationText"/>).</summary>
        internal static Option<TimeSpan> DurationOption(string name, string description) => new(name)
        {
            HelpName = "DURATION",
            Description = description,
            CustomParser = r =>
            {
                var v = r.Tokens[0].Value;
                if (v.StartsWith("--", StringComparison.Ordinal) && v.Length > 2)
                {
                    r.AddError($"{name} needs a value (found the option '{v}')");
                    return default;
                }
                if (DurationText.TryParse(v, out var value, out var error)) return value;
                r.AddError($"{name} {error}");
                return default;
            },
        };

        /// <summary>--districts a,b,c: the city's district names.</summary>
        internal static Option<List<string>> DistrictsOption() => new("--districts")
        {
            HelpName = "LIST",
            Description = "comma-separated district names of the city (lower-case letters, digits, '-'); offsets from the centre "
                + $"are derived from the seed and the name (default {string.Join(",", CityMap.DefaultDistrictNames)})",
            CustomParser = r =>
            {
                var v = r.Tokens[0].Value;
                var names = v.Split(',', StringSplitOptions.TrimEntries).ToList();
                try { CityMap.ValidateDistricts(names.Count == 1 && names[0].Length == 0 ? [] : names); }
                catch (ArgumentException e) { r.AddError(e.Message); }
                return names;
            },
        };

        /// <summary>--centre LAT,LON in decimal degrees.</summary>
        internal static Option<(double Latitude, double Longitude)> CentreOption() => new("--centre")
        {
            HelpName = "LAT,LON",
            Description = string.Create(CultureInfo.InvariantCulture,
                $"the city's centre in decimal degrees, e.g. 48.8566,2.3522 (default {Fleet.CentreLatitude},{Fleet.CentreLongitude})"),
            CustomParser = r =>
            {
                var v = r.Tokens[0].Value;
                var parts = v.Split(',', StringSplitOptions.TrimEntries);
                if (parts.Length != 2
                    || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var lat)
                    || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var lon))
                {
                    r.AddError($"--centre expects LAT,LON in decimal degrees such as 48.8566,2.3522, not '{v}'");
                    return default;
                }
                try { CityMap.ValidateCentre(lat, lon); }
                catch (ArgumentException e) { r.AddError($"{e.Message} (in '{v}')"); }
                return (lat, lon);
            },
        };

        /// <summary>The options of the MQTT fleet's command line (one set per parser: options know their commands).</summary>
        private sealed class FleetCommandLine
        {
            public readonly Option<string> Broker = CliOptions.Text("--broker", "URL", "MQTT broker (default mqtt://127.0.0.1:1883; mqtts:// for TLS)");
            public readonly Option<string> Username = CliOptions.Text("--username", "NAME", "MQTT user name", nonEmpty: false);
            public readonly Option<string> Password = CliOptions.Text("--password", "SECRET", $"MQTT password (or set {PasswordVariable})", nonEmpty: false);
            public readonly Option<string> ClientId = CliOptions.Text("--client-id", "ID", "MQTT client id (default city-simulator-<random>)");
            public readonly Option<string> City = CliOptions.Text("--city", "NAME", "city id in the registry and LoRaWAN application names (default lumen)", nonEmpty: false);
            public readonly Option<List<string>> Districts = DistrictsOption();
            public readonly Option<(double Latitude, double Longitude)> Centre = CentreOption();
            public readonly Option<int> Traffic = CliOptions.Int("--traffic", "N", "traffic devices (default 10)", min: 0);
            public readonly Option<int> Water = CliOptions.Int("--water", "N", "water devices (default 10)", min: 0);
            public readonly Option<int> Environment = CliOptions.Int("--environment", "N", "environment devices (default 10)", min: 0);
            public readonly Option<string> Formats = CliOptions.Text("--formats", "LIST", "comma-separated: json,senml,chirpstack,tts (default all four)", nonEmpty: false);
            public readonly Option<double> Rate = CliOptions.Number("--rate", "R", "messages per second across the fleet; 0 = as fast as possible (default 50)");
            public readonly Option<double> Duration = CliOptions.Number("--duration", "SECONDS", "stop after this many seconds", max: 1e9, positive: true);
            public readonly Option<int> MessagesPerDevice = CliOptions.Int("--messages-per-device", "N", "stop each device after N messages", min: 1);
            public readonly Option<int> Seed = CliOptions.Int("--seed", "N", "random seed; the same seed gives the same devices and values (default 42)");
            public readonly Option<int> Qos = CliOptions.Int("--qos", "0|1|2", "publish QoS (default 1)", min: 0, max: 2);
            public readonly Option<DateTimeOffset> CurveTime = CurveTimeOption(
                "evaluate the daily profiles at this fixed local time instead of now: HH:mm (today) or an ISO 8601 date and time, e.g. 08:15 for rush hour");
            public readonly Option<TimeSpan> Backfill = DurationOption("--backfill",
                "before publishing live, every device sends the readings it buffered over the last DURATION with their own past "
                + "timestamps, in time order, as fast as --max-in-flight allows (2h, 90m, 1h30m, 00:45:00; shorter than 7d, "
                + "the gateway's default Gateway:Normalisation:MaxAge)");
            public readonly Option<TimeSpan> BackfillInterval = DurationOption("--backfill-interval",
                "each device's reading interval in the backfill window (default 1m)");
            public readonly Option<int> BackfillQos = CliOptions.Int("--backfill-qos", "0|1|2", "QoS of the backfilled publishes (default 1)", min: 0, max: 2);
            public readonly Option<int> MaxInFlight = CliOptions.Int("--max-in-flight", "N", "unacknowledged publishes allowed at once (default 1000)", min: 1);
            public readonly Option<double> ConnectTimeout = CliOptions.Number("--connect-timeout", "SECONDS",
                "give up when the broker is not reachable within this time (default 30)", max: 86400, positive: true);
            public readonly Option<string> Registry = CliOptions.Text("--registry", "FILE", "write the device registry here before publishing");
            public readonly Option<string> Report = CliOptions.Text("--report", "FILE", "write the run report here as JSON");
            public readonly Option<bool> RegistryOnly = CliOptions.Flag("--registry-only", "write the registry (to --registry FILE, else stdout) and exit");
            public readonly Option<bool> NoProgress = CliOptions.Flag("--no-progress", "no live progress line on stderr");

            public Option[] All => [Broker, Username, Password, ClientId, City, Districts, Centre, Traffic, Water, Environment, Formats, Rate,
                Duration, MessagesPerDevice, Seed, Qos, CurveTime, Backfill, BackfillInterval, BackfillQos, MaxInFlight, ConnectTimeout,
                Registry, Report, RegistryOnly, NoProgress];

            /// <summary>The options of a parsed command line; what is not given keeps the default of <see cref="SimulatorOptions"/>.</summary>
            public ParsedCommand Bind(ParseResult r, string? passwordFromEnvironment)
            {
                var o = new SimulatorOptions { Progress = !r.GetValue(NoProgress) };
                var result = new ParsedCommand(o) { RegistryOnly = r.GetValue(RegistryOnly) };
                if (r.Given(Broker, out var broker)) o.BrokerUrl = broker;
                if (r.Given(Username, out var username)) o.Username = username;
                if (r.Given(Password, out var password)) o.Password = password;
                if (r.Given(ClientId, out var clientId)) o.ClientId = clientId;
                if (r.Given(City, out var city)) o.City = city;
                if (r.Given(Districts, out var districts)) o.Districts = districts;
                if (r.Given(Centre, out var centre)) (o.CentreLatitude, o.CentreLongitude) = centre;
                if (r.Given(Traffic, out var traffic)) o.TrafficDevices = traffic;
                if (r.Given(Water, out var water)) o.WaterDevices = water;
                if (r.Given(Environment, out var environment)) o.EnvironmentDevices = environment;
                if (r.Given(Formats, out var formats))
                    o.Formats = formats.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                if (r.Given(Rate, out var rate)) o.Rate = rate;
                if (r.Given(Duration, out var duration)) o.Duration = TimeSpan.FromSeconds(duration);
                if (r.Given(MessagesPerDevice, out var messages)) o.MessagesPerDevice = messages;
                if (r.Given(Seed, out var seed)) o.Seed = seed;
                if (r.Given(Qos, out var qos)) o.Qos = qos;
                if (r.Given(CurveTime, out var curveTime)) o.CurveTime = curveTime;
                if (r.Given(Backfill, out var backfill)) o.Backfill = backfill;
                if (r.Given(BackfillInterval, out var backfillInterval)) o.BackfillInterval = backfillInterval;
                if (r.Given(BackfillQos, out var backfillQos)) o.BackfillQos = backfillQos;
                if (r.Given(MaxInFlight, out var maxInFlight)) o.MaxInFlight = maxInFlight;
                if (r.Given(ConnectTimeout, out var connectTimeout)) o.ConnectTimeout = TimeSpan.FromSeconds(connectTimeout);
                if (r.Given(Registry, out var registry)) o.RegistryPath = registry;
                if (r.Given(Report, out var report)) o.ReportPath = report;

                if (o.Password is null && !string.IsNullOrEmpty(o.Username) && !string.IsNullOrEmpty(passwordFromEnvironment))
                    o.Password = passwordFromEnvironment;
                if (o.Password is not null && string.IsNullOrEmpty(o.Username))
                    throw new UsageException("a password was given without --username");
                if (o.Backfill is null && (r.Given(BackfillInterval, out _) || r.Given(BackfillQos, out _)))
                    throw new UsageException("--backfill-interval and --backfill-qos need --backfill");
                try { o.Validate(); }
                catch (ArgumentException e) { throw new UsageException(e.Message); }
                return result;
            }
        }
    }

    /// <summary>The outcome of parsing the command line.</summary>
    public sealed class ParsedCommand(SimulatorOptions options)
    {
        public SimulatorOptions Options { get; } = options;
        public bool Help { get; set; }
        public bool RegistryOnly { get; set; }
    }

    public sealed class UsageException(string message) : Exception(message);
}
