using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace CityGateway.Cli;

/// <summary>
/// The kinds of option the commands take, each checked while parsing so that a bad value is a
/// usage error naming the option: "--rate expects a number, not 'fast'". Numbers are read with the
/// invariant culture. An option that is not given leaves the command's own default in place (see
/// <see cref="Given{T}"/>); defaults are stated in the descriptions.
/// </summary>
public static class CliOptions
{
    /// <summary>A text value. <paramref name="nonEmpty"/>: "" is refused.</summary>
    public static Option<string> Text(string name, string helpName, string description, bool required = false, bool nonEmpty = true) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            Required = required,
            CustomParser = r =>
            {
                if (Value(r, name) is not { } v) return "";
                if (nonEmpty && v.Length == 0) Fail(r, $"{name} needs a non-empty value");
                return v;
            },
        };

    /// <summary>A whole number, at least <paramref name="min"/> and at most <paramref name="max"/>.</summary>
    public static Option<int> Int(string name, string helpName, string description, int min = int.MinValue, int max = int.MaxValue, bool required = false) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            Required = required,
            CustomParser = r => (int)Whole(r, name, min, max),
        };

    /// <summary>A whole number (64 bits), at least <paramref name="min"/>.</summary>
    public static Option<long> Long(string name, string helpName, string description, long min = long.MinValue, bool required = false) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            Required = required,
            CustomParser = r => Whole(r, name, min, long.MaxValue),
        };

    private static long Whole(System.CommandLine.Parsing.ArgumentResult r, string name, long min, long max)
    {
        if (Value(r, name) is not { } v) return 0;
        if (!long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
        {
            Fail(r, $"{name} expects a whole number, not '{v}'");
            return 0;
        }
        if (n < min) Fail(r, $"{name} must be at least {min}, not {n}");
        else if (n > max) Fail(r, $"{name} must be at most {max}, not {n}");
        return n;
    }

    /// <summary>
    /// A finite number from <paramref name="min"/> to <paramref name="max"/>; <paramref name="positive"/>
    /// refuses 0 as well (durations, timeouts).
    /// </summary>
    public static Option<double> Number(string name, string helpName, string description, double min = 0, double max = double.MaxValue,
        bool positive = false) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            CustomParser = r =>
            {
                if (Value(r, name) is not { } v) return 0;
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || !double.IsFinite(n))
                    { Fail(r, $"{name} expects a number, not '{v}'"); return 0; }
                if (positive && n <= 0) Fail(r, $"{name} must be positive, not {v}");
                else if (n < min) Fail(r, $"{name} must be at least {min.ToString(CultureInfo.InvariantCulture)}, not {v}");
                else if (n > max) Fail(r, $"{name} must be at most {max.ToString(CultureInfo.InvariantCulture)}, not {v}");
                return n;
            },
        };

    /// <summary>One of <paramref name="values"/>, compared without regard to case; the value returned is the listed one.</summary>
    public static Option<string> Choice(string name, string helpName, string description, params string[] values) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            CustomParser = r =>
            {
                if (Value(r, name) is not { } v) return "";
                var match = values.FirstOrDefault(x => string.Equals(x, v.Trim(), StringComparison.OrdinalIgnoreCase));
                if (match is null) Fail(r, $"{name} must be one of {string.Join(", ", values)}, not '{v}'");
                return match ?? "";
            },
        };

    /// <summary>A switch: present or not, it takes no value ("--flag true" is an error, not a value).</summary>
    public static Option<bool> Flag(string name, string description) =>
        new(name) { Description = description, Arity = ArgumentArity.Zero };

    /// <summary>True when the option was on the command line (not only its default); then <paramref name="value"/> is what it said.</summary>
    public static bool Given<T>(this ParseResult result, Option<T> option, out T value)
    {
        if (result.GetResult(option) is { Implicit: false } given)
        {
            value = given.GetValueOrDefault<T>();
            return true;
        }
        value = default!;
        return false;
    }

    private static string? Value(ArgumentResult r, string name)
    {
        if (r.Tokens.Count == 0) return null;
        var v = r.Tokens[0].Value;
        // The parser hands an option's value whatever follows it, even another option's name
        // ("--file --json"): that is a missing value, not a file called "--json".
        if (v.StartsWith("--", StringComparison.Ordinal) && v.Length > 2)
        {
            Fail(r, $"{name} needs a value (found the option '{v}')");
            return null;
        }
        return v;
    }

    private static void Fail(ArgumentResult r, string message) => r.AddError(message);
}
