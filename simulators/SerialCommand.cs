using System.Globalization;
using System.Runtime.InteropServices;

namespace CityGateway.Simulators;

/// <summary>The console front end of the serial mode (<c>Simulators serial ...</c>).</summary>
public static class SerialCommand
{
    private const string Usage = """
        City sensor simulator, serial mode: writes line-delimited readings of instruments sharing a
        serial line to a tty (a serial device or one end of a pseudo-terminal pair).

        Usage: Simulators serial --port PATH [options]

          --port PATH                tty to write to, e.g. /dev/ttyUSB0 or a socat pty link
          --format kv|csv|jsonl      kv: water-quality instrument (wq-s001...), csv: traffic counter
                                     (trf-s001...), jsonl: air-quality station (env-s001...) (default kv)
          --devices N                devices taking turns on the line (default 5, at most 999)
          --rate R                   lines per second; 0 = as fast as possible (default 10)
          --baud N                   line speed set on the tty (default 115200)
          --throttle                 pace the bytes to an 8N1 line at --baud (baud/10 bytes per second)
          --messages-per-device N    stop each device after N readings (intact or damaged)
          --duration SECONDS         stop after this many seconds
          --seed N                   random seed: devices, values, noise and split writes (default 42)
          --no-checksum              no *hh checksum after the lines
          --line-ending crlf|lf      line ending (default crlf)
          --noise F                  fraction of lines corrupted, 0..1 (default 0; needs checksums):
                                     bad_checksum, garbage_inside, garbage_line, truncated
          --split-writes F           fraction of intact lines written in 2-4 pieces (default 0)
          --curve-time TIME          evaluate the daily profiles at this fixed local time instead of now:
                                     HH:mm (today) or an ISO 8601 date and time
          --open-timeout SECONDS     keep trying to open the port this long at the start (default 10)
          --city NAME                city id in the registry (default lumen)
          --registry FILE            write the device registry here before writing
          --report FILE              write the run report here as JSON
          --registry-only            write the registry (to --registry FILE, else stdout) and exit
          --no-progress              no live progress line on stderr
          --help                     show this help

        Without --duration or --messages-per-device the simulator runs until Ctrl-C. When the port
        disappears, the lines falling due are counted as lost and the port is reopened every 200 ms.
        Exit codes: 0 every line written, 1 the port could not be opened or lines were lost,
        2 invalid options.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        SerialParsedCommand parsed;
        try
        {
            parsed = Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("Run with serial --help for the list of options.");
            return SimulatorCommand.ExitUsage;
        }
        if (parsed.Help)
        {
            Console.WriteLine(Usage);
            return SimulatorCommand.ExitOk;
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
        var o = new SerialSimulatorOptions { Progress = true };
        var result = new SerialParsedCommand(o);
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
                case "throttle": NoValue(); o.Throttle = true; continue;
                case "no-checksum": NoValue(); o.Checksum = false; continue;
            }

            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"--{key} needs a value"));
            if (inline is null && value.StartsWith("--", StringComparison.Ordinal))
                throw new UsageException($"--{key} needs a value");
            switch (key)
            {
                case "port": o.Port = NonEmpty(value); break;
                case "format":
                    o.Format = value.Trim().ToLowerInvariant();
                    if (!SerialSimulatorOptions.AllFormats.Contains(o.Format))
                        throw new UsageException($"--format must be one of {string.Join(", ", SerialSimulatorOptions.AllFormats)}, not '{value}'");
                    break;
                case "devices": o.Devices = Int(value, 1); break;
                case "rate": o.Rate = Number(value, 0); break;
                case "baud": o.BaudRate = Int(value, 50); break;
                case "messages-per-device": o.MessagesPerDevice = Int(value, 1); break;
                case "duration": o.Duration = Seconds(value, 1e9); break;
                case "seed": o.Seed = Int(value, int.MinValue); break;
                case "line-ending":
                    o.LineEnding = value.ToLowerInvariant() switch
                    {
                        "crlf" or "\\r\\n" => SerialSimulatorOptions.Crlf,
                        "lf" or "\\n" => SerialSimulatorOptions.Lf,
                        _ => throw new UsageException($"--line-ending must be crlf or lf, not '{value}'"),
                    };
                    break;
                case "noise": o.Noise = Fraction(value); break;
                case "split-writes": o.SplitWrites = Fraction(value); break;
                case "curve-time": o.CurveTime = Time(value); break;
                case "open-timeout":
                    double open = Number(value, 0);
                    if (open > 86400) throw new UsageException($"--open-timeout {value} is too long (at most 86400)");
                    o.OpenTimeout = TimeSpan.FromSeconds(open);
                    break;
                case "city": o.City = value; break;
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

            double Fraction(string v)
            {
                double f = Number(v, 0);
                if (f > 1) throw new UsageException($"--{key} is a fraction from 0 to 1, not {v}");
                return f;
            }

            TimeSpan Seconds(string v, double max)
            {
                double s = Number(v, double.Epsilon);
                if (s > max) throw new UsageException($"--{key} {v} is too long");
                return TimeSpan.FromSeconds(s);
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
        if (!result.Help)
        {
            try { o.Validate(needPort: !result.RegistryOnly); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
        }
        return result;
    }
}

/// <summary>The outcome of parsing the serial mode's command line.</summary>
public sealed class SerialParsedCommand(SerialSimulatorOptions options)
{
    public SerialSimulatorOptions Options { get; } = options;
    public bool Help { get; set; }
    public bool RegistryOnly { get; set; }
}
