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
    /// <summary>True when <paramref name="topic"/> matches the MQTT filter (+ one level, # the rest).</summary>
    public static bool Matches(string filter, string topic)
    {
        if (filter.StartsWith("$share/", StringComparison.Ordinal))
        {
            var second = filter.IndexOf('/', 7);
            if (second < 0) return false;
            filter = filter[(second + 1)..];
        }
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
