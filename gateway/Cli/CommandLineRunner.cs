using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Runtime.CompilerServices;

namespace CityGateway.Cli;

/// <summary>
/// Runs a System.CommandLine command tree the way every command of this repository behaves
/// (the gateway's operator commands, the simulators, the benchmarks): <c>--help</c> (also
/// <c>-h</c>, <c>-?</c>) on any command prints its options on standard output and exits 0; a wrong
/// command line is reported on standard error, one problem a line, and exits
/// <see cref="ExitUsage"/> without running anything.
/// </summary>
public static class CommandLineRunner
{
    /// <summary>The exit code of a command line that cannot be run as given.</summary>
    public const int ExitUsage = 2;

    // Response files are off: an argument starting with '@' (a password, a file name) is a value,
    // not the name of a file to read more arguments from.
    private static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    private static readonly ConditionalWeakTable<Command, string> Epilogues = new();

    /// <summary>A top-level command named as the program is run (its usage lines show that name), with <c>--help</c> on it and every sub-command.</summary>
    public static Command Root(string name, string description)
    {
        var help = new HelpOption();
        help.Action = new HelpWithEpilogue((HelpAction)help.Action!);
        var root = new Command(name, description);
        root.Options.Add(help);
        return root;
    }

    /// <summary>Text printed after the options in the command's help (exit codes, notes).</summary>
    public static void SetEpilogue(Command command, string text) => Epilogues.AddOrUpdate(command, text);

    public static ParseResult Parse(Command root, IReadOnlyList<string> args) => root.Parse(args, Parsing);

    /// <summary>Parses and runs the command's action; a wrong command line gives <see cref="ExitUsage"/>.</summary>
    /// <param name="helpOnError">after the problems, print the command's help (short commands) instead of a hint to run --help.</param>
    public static int Run(Command root, IReadOnlyList<string> args, TextWriter output, TextWriter error, bool helpOnError = false)
    {
        var result = Parse(root, args);
        if (result.Errors.Count > 0) return ReportUsage(result, error, helpOnError);
        return Invoke(result, output, error);
    }

    /// <summary>Runs the action of a command line parsed without errors.</summary>
    public static int Invoke(ParseResult result, TextWriter output, TextWriter error) => result.Invoke(Invocation(output, error));

    public static Task<int> RunAsync(Command root, IReadOnlyList<string> args, TextWriter output, TextWriter error, bool helpOnError = false,
        CancellationToken cancellationToken = default)
    {
        var result = Parse(root, args);
        if (result.Errors.Count > 0) return Task.FromResult(ReportUsage(result, error, helpOnError));
        return result.InvokeAsync(Invocation(output, error), cancellationToken);
    }

    /// <summary>Writes the problems (the parser's, or <paramref name="problems"/>) and what to do about them; returns <see cref="ExitUsage"/>.</summary>
    public static int ReportUsage(ParseResult result, TextWriter error, bool withHelp, IEnumerable<string>? problems = null)
    {
        foreach (var problem in (problems ?? result.Errors.Select(e => e.Message)).Distinct())
            error.WriteLine("error: " + problem);
        if (withHelp)
        {
            error.WriteLine();
            WriteHelp(result, error);
        }
        else
        {
            error.WriteLine($"Run '{CommandPath(result)} --help' for the list of options.");
        }
        return ExitUsage;
    }

    /// <summary>The help of the command <paramref name="result"/> stopped at, written to <paramref name="to"/>.</summary>
    public static void WriteHelp(ParseResult result, TextWriter to)
    {
        var names = new List<string>();
        for (var c = result.CommandResult; c.Parent is CommandResult parent; c = parent) names.Insert(0, c.Command.Name);
        names.Add("--help");
        Parse(result.RootCommandResult.Command, names).Invoke(Invocation(to, to));
    }

    /// <summary>"Simulators serial": the names from the top-level command to the one parsed.</summary>
    public static string CommandPath(ParseResult result)
    {
        var names = new List<string>();
        for (SymbolResult? c = result.CommandResult; c is CommandResult command; c = command.Parent) names.Insert(0, command.Command.Name);
        return string.Join(' ', names);
    }

    // Exceptions are the command's to handle: one that escapes ends the process as it would without
    // the parser, rather than being turned into exit code 1 and a red message. Ctrl-C and SIGTERM
    // are the command's too (the simulators drain their acknowledgements): the parser's own
    // handler would end the process two seconds later.
    private static InvocationConfiguration Invocation(TextWriter output, TextWriter error) =>
        new() { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };

    private sealed class HelpWithEpilogue(HelpAction inner) : SynchronousCommandLineAction
    {
        // As the parser's own help action: "--help" wins over missing required options.
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int code = inner.Invoke(parseResult);
            if (Epilogues.TryGetValue(parseResult.CommandResult.Command, out var text))
                parseResult.InvocationConfiguration.Output.WriteLine(text);
            return code;
        }
    }
}
