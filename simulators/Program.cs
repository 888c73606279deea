using System.Globalization;
using System.Runtime.InteropServices;
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

        private const string Usage = """
            City sensor fleet simulator: publishes traffic, water and environment readings over MQTT
            as flat JSON, SenML, ChirpStack v4 and The Things Stack v3 uplinks.

            Usage: Simulators [options]
                   Simulators serial --port PATH [options]   (line-delimited frames on a tty; serial --help)

              --broker URL               MQTT broker (default mqtt://127.0.0.1:1883; mqtts:// for TLS)
              --username NAME            MQTT user name
              --password SECRET          MQTT password (or set SIMULATOR_MQTT_PASSWORD)
              --client-id ID             MQTT client id (default city-simulator-<random>)
              --city NAME                city id in the registry and LoRaWAN application names (default lumen)
              --traffic N                traffic devices (default 10)
              --water N                  water devices (default 10)
              --environment N            environment devices (default 10)
              --formats LIST             comma-separated: json,senml,chirpstack,tts (default all four)
              --rate R                   messages per second across the fleet; 0 = as fast as possible (default 50)
              --duration SECONDS         stop after this many seconds
              --messages-per-device N    stop each device after N messages
              --seed N                   random seed; the same seed gives the same devices and values (default 42)
              --qos 0|1|2                publish QoS (default 1)
              --curve-time TIME          evaluate the daily profiles at this fixed local time instead of now:
                                         HH:mm (today) or an ISO 8601 date and time, e.g. 08:15 for rush hour
              --max-in-flight N          unacknowledged publishes allowed at once (default 1000)
              --connect-timeout SECONDS  give up when the broker is not reachable within this time (default 30)
              --registry FILE            write the device registry here before publishing
              --report FILE              write the run report here as JSON
              --registry-only            write the registry (to --registry FILE, else stdout) and exit
              --no-progress              no live progress line on stderr
              --help                     show this help

            Without --duration or --messages-per-device the simulator runs until Ctrl-C.
            Exit codes: 0 all published messages completed, 1 connection error, failed or
            unacknowledged publishes, 2 invalid options.
            """;

        public static async Task<int> RunAsync(string[] args)
        {
            if (args.Length > 0 && args[0] == "serial") return await SerialCommand.RunAsync(args[1..]);

            ParsedCommand parsed;
            try
            {
                parsed = Parse(args, Environment.GetEnvironmentVariable(PasswordVariable));
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                Console.Error.WriteLine("Run with --help for the list of options.");
                return ExitUsage;
            }
            if (parsed.Help)
            {
                Console.WriteLine(Usage);
                return ExitOk;
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

        /// <summary>Parses the command line. Throws <see cref="UsageException"/> for unknown or malformed options.</summary>
        public static ParsedCommand Parse(IReadOnlyList<string> args, string? passwordFromEnvironment = null)
        {
            var o = new SimulatorOptions { Progress = true };
            var result = new ParsedCommand(o);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < args.Count; i++)
            {
                var arg = args[i];
                if (arg is "-h" or "--help" or "-?") { result.Help = true; continue; }
                if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                    throw new UsageException($"unexpected argument '{arg}'");
                string key = arg[2..];
                string? inline = null;
                int eq = key.IndexOf('=');
                if (eq >= 0) { inline = key[(eq + 1)..]; key = key[..eq]; }
                if (!seen.Add(key)) throw new UsageException($"--{key} is given twice");

                switch (key)
                {
                    case "registry-only": NoValue(); result.RegistryOnly = true; continue;
                    case "no-progress": NoValue(); o.Progress = false; continue;
                }

                string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"--{key} needs a value"));
                if (inline is null && value.StartsWith("--", StringComparison.Ordinal))
                    throw new UsageException($"--{key} needs a value");
                switch (key)
                {
                    case "broker": o.BrokerUrl = value; break;
                    case "username": o.Username = value; break;
                    case "password": o.Password = value; break;
                    case "client-id": o.ClientId = NonEmpty(value); break;
                    case "city": o.City = value; break;
                    case "traffic": o.TrafficDevices = Int(value, 0); break;
                    case "water": o.WaterDevices = Int(value, 0); break;
                    case "environment": o.EnvironmentDevices = Int(value, 0); break;
                    case "formats":
                        o.Formats = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                        break;
                    case "rate": o.Rate = Number(value, 0); break;
                    case "duration":
                        double seconds = Number(value, double.Epsilon);
                        if (seconds > TimeSpan.MaxValue.TotalSeconds / 2) throw new UsageException($"--duration {value} is too long");
                        o.Duration = TimeSpan.FromSeconds(seconds);
                        break;
                    case "messages-per-device": o.MessagesPerDevice = Int(value, 1); break;
                    case "seed": o.Seed = Int(value, int.MinValue); break;
                    case "qos":
                        o.Qos = Int(value, 0);
                        if (o.Qos > 2) throw new UsageException($"--qos must be 0, 1 or 2, not {value}");
                        break;
                    case "max-in-flight": o.MaxInFlight = Int(value, 1); break;
                    case "curve-time": o.CurveTime = Time(value); break;
                    case "connect-timeout":
                        double limit = Number(value, double.Epsilon);
                        if (limit > 86400) throw new UsageException($"--connect-timeout {value} is too long (at most 86400)");
                        o.ConnectTimeout = TimeSpan.FromSeconds(limit);
                        break;
                    case "registry": o.RegistryPath = NonEmpty(value); break;
                    case "report": o.ReportPath = NonEmpty(value); break;
                    default: throw new UsageException($"unknown option '--{key}'");
                }

                string NonEmpty(string v) => v.Length > 0 ? v : throw new UsageException($"--{key} needs a non-empty value");

                int Int(string v, int min)
                {
                    if (!int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                        throw new UsageException($"--{key} expects a whole number, not '{v}'");
                    if (n < min) throw new UsageException($"--{key} must be at least {min}, not {n}");
                    return n;
                }

                double Number(string v, double min)
                {
                    if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || !double.IsFinite(n))
                        throw new UsageException($"--{key} expects a number, not '{v}'");
                    if (n < min) throw new UsageException($"--{key} must be {(min > 0 ? "positive" : $"at least {min}")}, not {v}");
                    return n;
                }

                DateTimeOffset Time(string v)
                {
                    if (TimeOnly.TryParseExact(v, ["H:mm", "HH:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
                        return new DateTimeOffset(DateOnly.FromDateTime(DateTime.Now).ToDateTime(t, DateTimeKind.Local));
                    if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var dto))
                        return dto;
                    throw new UsageException($"--{key} expects HH:mm or an ISO 8601 date and time, not '{v}'");
                }

                void NoValue()
                {
                    if (inline is not null) throw new UsageException($"--{key} takes no value");
                }
            }
            if (o.Password is null && !string.IsNullOrEmpty(o.Username) && !string.IsNullOrEmpty(passwordFromEnvironment))
                o.Password = passwordFromEnvironment;
            if (o.Password is not null && string.IsNullOrEmpty(o.Username))
                throw new UsageException("a password was given without --username");
            if (!result.Help)
            {
                try { o.Validate(); }
                catch (ArgumentException e) { throw new UsageException(e.Message); }
            }
            return result;
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
