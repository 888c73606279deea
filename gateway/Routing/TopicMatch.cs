namespace CityGateway.Routing;

/// <summary>The named topic levels captured by a route's topic template.</summary>
public readonly struct TopicMatch
{
    private readonly KeyValuePair<string, string>[]? _values;

    public TopicMatch(KeyValuePair<string, string>[]? values) => _values = values;

    public static TopicMatch Empty => default;

    public string? Get(string name)
    {
        if (_values is null) return null;
        foreach (var kv in _values)
            if (kv.Key == name) return kv.Value;
        return null;
    }

    public IReadOnlyList<KeyValuePair<string, string>> Values => _values ?? [];
}

/// <summary>MQTT topic filter matching and template capture.</summary>
public static class Topics
{
    /// <summary>The prefix of an MQTT 5 shared subscription: <c>$share/{group}/{filter}</c>.</summary>
    public const string SharePrefix = "$share/";

    /// <summary>The shared-subscription form of a plain filter; a filter that is already shared is returned as it is.</summary>
    public static string Shared(string group, string filter) =>
        IsShared(filter) ? filter : SharePrefix + group + "/" + filter;

    public static bool IsShared(string filter) => filter.StartsWith(SharePrefix, StringComparison.Ordinal);

    /// <summary>The filter that topics are matched against: without a <c>$share/{group}/</c> prefix.
    /// Null for a shared form that names no filter after the group.</summary>
    public static string? Unshared(string filter)
    {
        if (!IsShared(filter)) return filter;
        var second = filter.IndexOf('/', SharePrefix.Length);
        return second < 0 ? null : filter[(second + 1)..];
    }

    /// <summary>Validates the group name of a shared subscription (MQTT 5 §4.8.2); returns an error message or null.</summary>
    public static string? ValidateShareName(string group)
    {
        if (group.Length == 0) return "the group name is empty";
        if (string.IsNullOrWhiteSpace(group)) return "the group name is only white space";
        foreach (var c in group)
        {
            if (c is '/' or '+' or '#') return $"the group name '{group}' contains '{c}' (not allowed: / + #)";
            if (char.IsControl(c)) return $"the group name '{group}' contains a control character";
        }
        return null;
    }

    /// <summary>True when <paramref name="topic"/> matches the MQTT filter (+ one level, # the rest).
    /// A shared subscription's filter matches the topics its filter after <c>$share/{group}/</c> matches.</summary>
    public static bool Matches(string filter, string topic)
    {
        if (Unshared(filter) is not { } plain) return false;
        filter = plain;
        // Topics starting with $ are not matched by wildcards at the first level (MQTT 3.1.1 §4.7.2),
        // shared subscriptions included: the check applies to the filter after $share/{group}/.
        if (topic.StartsWith('$') && (filter.StartsWith('+') || filter.StartsWith('#'))) return false;
        var fl = filter.Split('/');
        var tl = topic.Split('/');
        for (int i = 0; i < fl.Length; i++)
        {
            if (fl[i] == "#") return true; // also matches the parent level: "a/#" matches "a"
            if (i >= tl.Length) return false;
            if (fl[i] != "+" && fl[i] != tl[i]) return false;
        }
        return fl.Length == tl.Length;
    }

    /// <summary>Validates an MQTT topic filter; returns an error message or null.</summary>
    public static string? ValidateFilter(string filter)
    {
        if (string.IsNullOrEmpty(filter)) return "the topic filter is empty";
        if (IsShared(filter))
        {
            var group = filter[SharePrefix.Length..];
            var slash = group.IndexOf('/');
            if (slash < 0) return $"'{filter}' names no topic filter after $share/{{group}}/";
            if (ValidateShareName(group[..slash]) is { } ge) return $"{ge} in '{filter}'";
            var rest = group[(slash + 1)..];
            if (rest.Length == 0) return $"'{filter}' names no topic filter after $share/{{group}}/";
            filter = rest;
        }
        var levels = filter.Split('/');
        for (int i = 0; i < levels.Length; i++)
        {
            var l = levels[i];
            if (l.Contains('#') && (l != "#" || i != levels.Length - 1)) return $"'#' must be a whole level and the last one in '{filter}'";
            if (l.Contains('+') && l != "+") return $"'+' must be a whole level in '{filter}'";
        }
        return null;
    }

    /// <summary>Captures {name} levels of a template such as city/{domain}/{district}/{device}.</summary>
    public static TopicMatch Capture(string? template, string topic)
    {
        if (string.IsNullOrEmpty(template)) return TopicMatch.Empty;
        var tl = template.Split('/');
        var levels = topic.Split('/');
        List<KeyValuePair<string, string>>? values = null;
        for (int i = 0; i < tl.Length && i < levels.Length; i++)
        {
            var name = tl[i];
            if (name.Length > 2 && name[0] == '{' && name[^1] == '}')
                (values ??= []).Add(new(name[1..^1], levels[i]));
        }
        return new TopicMatch(values?.ToArray());
    }
}
