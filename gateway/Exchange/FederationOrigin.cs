using System.Net;

namespace CityGateway.Exchange;

/// <summary>
/// Where our API key may go. The key is sent only to the origin (scheme, host, port) of the
/// partner's configured well-known URL, or to an API base configured explicitly; and only over
/// HTTPS unless the address is loopback (127.0.0.0/8, ::1, localhost: local runs and tests).
/// </summary>
public static class FederationOrigin
{
    /// <summary>Loopback: "localhost", 127.0.0.0/8 or ::1.</summary>
    public static bool IsLoopback(Uri uri)
    {
        if (string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    /// <summary>Null when <paramref name="text"/> may be configured as a partner URL; otherwise why not.</summary>
    public static string? CheckConfigured(string? text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
            return $"'{text}' is not an http(s) URL";
        if (u.UserInfo.Length > 0) return $"'{u.GetLeftPart(UriPartial.Scheme)}{u.Host}…' carries user information; give credentials through ApiKey";
        if (u.Scheme == "http" && !IsLoopback(u))
            return $"'{text}' is plain http; use https (http is allowed for loopback addresses only)";
        return null;
    }

    /// <summary>Same scheme, host and port.</summary>
    public static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>
    /// The API base a partner's well-known document names, when our key may be sent there;
    /// otherwise null with the reason. Allowed: the origin of <paramref name="wellKnownUrl"/>, or
    /// exactly <paramref name="configuredApiBase"/>; https, or http on loopback.
    /// </summary>
    public static Uri? CheckApiBase(string published, string wellKnownUrl, string? configuredApiBase, out string reason, out string? why)
    {
        reason = "origin";
        if (!Uri.TryCreate(published, UriKind.Absolute, out var api) || api.Scheme is not ("http" or "https"))
        {
            why = $"apiBase '{FeedReader.Shown(published)}' is not an http(s) URL";
            return null;
        }
        if (api.UserInfo.Length > 0 || api.Query.Length > 0 || api.Fragment.Length > 0)
        {
            why = "apiBase carries user information, a query or a fragment";
            return null;
        }
        var wellKnown = new Uri(wellKnownUrl);
        bool configured = !string.IsNullOrWhiteSpace(configuredApiBase)
            && Uri.TryCreate(configuredApiBase, UriKind.Absolute, out var c)
            && SameOrigin(c, api)
            && string.Equals(c.AbsolutePath.TrimEnd('/'), api.AbsolutePath.TrimEnd('/'), StringComparison.Ordinal);
        if (!configured && !SameOrigin(api, wellKnown))
        {
            why = $"apiBase {api.Scheme}://{api.Authority} is not on the origin of the configured WellKnownUrl ({wellKnown.Scheme}://{wellKnown.Authority})"
                + " and not the configured ApiBase";
            return null;
        }
        if (api.Scheme == "http" && !IsLoopback(api))
        {
            reason = "insecure";
            why = $"apiBase {api.Scheme}://{api.Authority} is plain http; the key goes over https only";
            return null;
        }
        why = null;
        return api;
    }
}
