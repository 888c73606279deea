namespace CityGateway.Routing;

/// <summary>MQTT topic filter matching and template levels. Runs for every message, so it walks the
/// strings level by level instead of splitting them.</summary>
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

    /// <summary><see cref="Unshared"/> without a copy, for every message; empty when no filter follows the group.</summary>
    private static ReadOnlySpan<char> UnsharedSpan(string filter)
    {
        if (!IsShared(filter)) return filter;
        var second = filter.IndexOf('/', SharePrefix.Length);
        return second < 0 ? ReadOnlySpan<char>.Empty : filter.AsSpan(second + 1);
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
        var f = UnsharedSpan(filter);
        if (f.IsEmpty) return false;
        // Topics starting with $ are not matched by wildcards at the first level (MQTT 3.1.1 §4.7.2),
        // shared subscriptions included: the check applies to the filter after $share/{group}/.
        if (topic.StartsWith('$') && f[0] is '+' or '#') return false;
        var t = topic.AsSpan();
        bool topicLeft = true;
        while (true)
        {
            var fl = NextLevel(ref f, out bool filterLeft);
            if (fl is "#") return true; // also matches the parent level: "a/#" matches "a"
            if (!topicLeft) return false;
            var tl = NextLevel(ref t, out topicLeft);
            if (fl is not "+" && !fl.SequenceEqual(tl)) return false;
            if (!filterLeft) return !topicLeft;
        }
    }

    /// <summary>The next level of <paramref name="rest"/>; <paramref name="more"/> says whether a '/' followed it.</summary>
    private static ReadOnlySpan<char> NextLevel(scoped ref ReadOnlySpan<char> rest, out bool more)
    {
        int slash = rest.IndexOf('/');
        if (slash < 0)
        {
            var last = rest;
            rest = default;
            more = false;
            return last;
        }
        var level = rest[..slash];
        rest = rest[(slash + 1)..];
        more = true;
        return level;
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

    /// <summary>
    /// The topic level that a template such as city/{domain}/{district}/{device} names
    /// <paramref name="name"/>: true with the level's text, false when the template has no such level or
    /// the topic is shorter than the template.
    /// </summary>
    public static bool TryGetLevel(string? template, string topic, string name, out ReadOnlySpan<char> level)
    {
        level = default;
        if (string.IsNullOrEmpty(template)) return false;
        var tp = template.AsSpan();
        var t = topic.AsSpan();
        bool topicMore = true;
        while (topicMore)
        {
            var tl = NextLevel(ref tp, out bool templateMore);
            var value = NextLevel(ref t, out topicMore);
            if (name.Length > 0 && tl.Length == name.Length + 2 && tl[0] == '{' && tl[^1] == '}' && tl[1..^1].SequenceEqual(name))
            {
                level = value;
                return true;
            }
            if (!templateMore) return false;
        }
        return false;
    }
}
