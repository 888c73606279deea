namespace CityGateway.Routing;

/// <summary>MQTT topic filter matching and template levels. Runs for every message, so it walks the
/// strings level by level instead of splitting them.</summary>
public static class Topics
{
    private const string SharePrefix = "$share/";

    /// <summary>The filter a shared subscription ($share/{group}/{filter}) stands for; other filters as they are.</summary>
    public static ReadOnlySpan<char> WithoutShare(string filter)
    {
        if (!filter.StartsWith(SharePrefix, StringComparison.Ordinal)) return filter;
        var second = filter.IndexOf('/', SharePrefix.Length);
        return second < 0 ? ReadOnlySpan<char>.Empty : filter.AsSpan(second + 1);
    }

    /// <summary>True when <paramref name="topic"/> matches the MQTT filter (+ one level, # the rest).</summary>
    public static bool Matches(string filter, string topic)
    {
        var f = WithoutShare(filter);
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
