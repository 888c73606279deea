using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.RateLimiting;
using CityGateway.Core;
using CityGateway.Exchange.Signing;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>
/// The partner API: each partner's key reads that partner's releases only. Errors are
/// application/problem+json; failed authentications are throttled per client address, requests
/// per verified partner; every pull is audited.
/// </summary>
public static partial class ExchangeEndpoints
{
    public const int MaxLimit = 500;
    private const string PartnerItem = "exchange.partner";
    private const string KeyItem = "exchange.key";

    [GeneratedRegex("^s[0-9]{1,18}$")]
    private static partial Regex CursorPattern();

    /// <summary>
    /// The partner API's two limits: failed authentications per client address (checked before the
    /// key, so guessing keys is slow) and requests per verified partner (counted after the key, so
    /// nobody but the partner can use up its budget).
    /// </summary>
    public static void AddExchangeRateLimiting(IServiceCollection services, ExchangeOptions options)
    {
        services.AddSingleton(_ => new PartnerApiLimits(options));
    }

    public static void Map(WebApplication app)
    {
        app.MapGet("/.well-known/city-exchange", (ExchangeContext x, IOptions<ExchangeOptions> o) =>
        {
            // Never from the request's Host header, which the client chooses: the validator makes the setting required.
            var baseUrl = o.Value.PublicBaseUrl!.TrimEnd('/');
            return Results.Json(new
            {
                cityId = x.CityId,
                cityName = x.CityName,
                algorithm = "ES256",
                keyId = x.Signer.KeyId,
                publicKey = x.Signer.PublicKeyPem,
                keys = new JsonArray(x.KeyHistory.Keys.Select(k => (JsonNode)new JsonObject
                {
                    ["keyId"] = k.KeyId,
                    ["publicKey"] = k.PublicKey,
                    ["validFrom"] = SigningKeyHistory.Iso(k.ValidFrom),
                    ["validUntil"] = k.ValidUntil is { } until ? SigningKeyHistory.Iso(until) : null,
                }).ToArray()),
                rollovers = new JsonArray(x.KeyHistory.Rollovers.Select(r => (JsonNode)r.DeepClone()).ToArray()),
                apiBase = baseUrl + "/api/exchange/v1",
                openapi = baseUrl + "/api/exchange/v1/openapi.json",
                // The public page: what is shared with whom, releases, pulls, budget, checkpoint.
                transparency = o.Value.Transparency.Enabled ? baseUrl + Transparency.TransparencyEndpoints.PagePath : null,
            });
        });
        app.MapGet("/api/exchange/v1/openapi.json", () => Results.Text(OpenApiDocument.Json, "application/json"));

        var api = app.MapGroup("/api/exchange/v1").AddEndpointFilter(RequirePartnerKey);
        api.MapGet("/feed", Feed);
        api.MapGet("/agreement", AgreementTerms);
        api.MapGet("/checkpoint", Audit.CheckpointEndpoint.Latest);
    }

    private static string? PresentedKey(HttpContext http)
    {
        var auth = http.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return auth[7..].Trim();
        return http.Request.Headers.TryGetValue("X-Api-Key", out var k) ? k.ToString() : null;
    }

    /// <summary>
    /// In order: an address that has failed too often is refused (429) without the key being checked;
    /// the key is checked (a failure counts against the address); the verified partner's request
    /// budget is charged (429 beyond it); the partner's agreement must exist and be in force (403).
    /// The partner API's endpoints are GETs with no body, so nothing is read before this.
    /// </summary>
    private static async ValueTask<object?> RequirePartnerKey(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (http.Request.Path.Value?.EndsWith("/openapi.json", StringComparison.Ordinal) == true) return await next(context);
        var x = http.RequestServices.GetRequiredService<ExchangeContext>();
        var limits = http.RequestServices.GetRequiredService<PartnerApiLimits>();
        var address = http.Connection.RemoteIpAddress;
        if (limits.AuthFailures.Throttled(address) is { } wait)
            return TooMany(http, wait, "Too many failed authentications",
                $"More than {limits.AuthFailures.PerMinute} failed authentications a minute from this address; the key is not checked until the minute is over.");
        var check = x.Keys.Check(PresentedKey(http), out var entry);
        if (check != KeyCheck.Valid)
        {
            limits.AuthFailures.Failed(address);
            // Logged once per address and minute: when this failure used up its allowance.
            if (limits.AuthFailures.Throttled(address) is not null) PartnerApiLog.AuthThrottled(Log(http), AuthFailureThrottle.PartitionOf(address), limits.AuthFailures.PerMinute);
            http.Response.Headers.WWWAuthenticate = "Bearer realm=\"city-exchange\"";
            return Results.Problem(statusCode: 401, title: check switch
            {
                KeyCheck.Missing => "API key required",
                KeyCheck.Revoked => "API key revoked",
                _ => "API key not recognised",
            }, detail: "Send your city's key as 'Authorization: Bearer <key>'.");
        }
        using (var lease = limits.PerPartner.AttemptAcquire(entry!.Partner))
        {
            if (!lease.IsAcquired)
            {
                var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var ra) ? ra : TimeSpan.FromMinutes(1);
                return TooMany(http, retry, "Too many requests",
                    $"At most {limits.RequestsPerMinute} requests a minute per partner; retry after {Math.Ceiling(retry.TotalSeconds)} s.");
            }
        }
        var agreement = x.AgreementFor(entry.Partner);
        if (agreement is null)
            return Results.Problem(statusCode: 403, title: "No agreement", detail: "This key's partner has no data-sharing agreement.");
        var now = http.RequestServices.GetService<TimeProvider>()?.GetUtcNow() ?? DateTimeOffset.UtcNow;
        if (!agreement.ValidAt(now))
        {
            bool early = now < agreement.ValidFrom;
            return Results.Problem(statusCode: 403, title: early ? "Agreement not yet valid" : "Agreement expired",
                detail: $"The data-sharing agreement is valid from {SigningKeyHistory.Iso(agreement.ValidFrom)} until {SigningKeyHistory.Iso(agreement.ValidUntil)}; " +
                        (early ? "not yet valid." : "expired."));
        }
        http.Items[PartnerItem] = agreement;
        http.Items[KeyItem] = entry;
        return await next(context);
    }

    private static IResult TooMany(HttpContext http, TimeSpan retry, string title, string detail)
    {
        http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return Results.Problem(statusCode: 429, title: title, detail: detail);
    }

    private static ILogger Log(HttpContext http) => http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("CityGateway.Exchange.PartnerApi");

    private static IResult Feed(HttpContext http, ExchangeContext x, string? since, int? limit, string? partner)
    {
        var agreement = (Agreement)http.Items[PartnerItem]!;
        var key = (PartnerKeyEntry)http.Items[KeyItem]!;
        if (partner is not null && partner != agreement.Partner.Id)
            return Results.Problem(statusCode: 403, title: "Not your feed", detail: "A key reads only its own partner's data.");
        long after = 0;
        if (since is not null)
        {
            if (!CursorPattern().IsMatch(since) || !long.TryParse(since.AsSpan(1), CultureInfo.InvariantCulture, out after))
                return Results.Problem(statusCode: 400, title: "Malformed cursor", detail: "Use the 'next' value of a previous answer, or omit 'since'.");
        }
        int take = limit ?? 50;
        if (take < 1 || take > MaxLimit)
            return Results.Problem(statusCode: 400, title: "Bad limit", detail: $"'limit' must be between 1 and {MaxLimit}.");

        var releases = x.Releases.After(agreement.Partner.Id, after, take + 1);
        bool more = releases.Count > take;
        var page = releases.Take(take).ToList();
        var envelopes = new List<JsonObject>();
        foreach (var r in page)
        {
            JsonObject? envelope;
            string? error = null;
            try { envelope = JsonNode.Parse(r.Envelope) as JsonObject; }
            catch (JsonException e) { envelope = null; error = e.Message; }
            // Each release is checked against the key its signature names, from the city's key
            // history: releases signed before a key rotation are served and verify with the old key.
            var publicKey = envelope?["signature"]?["keyId"] is JsonValue id && id.TryGetValue<string>(out var keyId) ? x.KeyHistory.PublicKeyOf(keyId) : null;
            if (envelope is not null && publicKey is null) error = "signed with a key that is not in the city's key history";
            if (envelope is null || publicKey is null || !SignedDocument.VerifyEnvelope(envelope, publicKey, out error))
            {
                PartnerApiLog.ReleaseFailedIntegrity(Log(http), r.Path, error ?? "unreadable");
                return Results.Problem(statusCode: 503, title: "Release unavailable",
                    detail: $"Release #{r.Sequence} failed its integrity check; the city's operators have been alerted.");
            }
            envelopes.Add(envelope);
        }
        string next = page.Count > 0 ? "s" + page[^1].Sequence : (since ?? "s0");
        bool csv = http.Request.Headers.Accept.ToString().Contains("text/csv", StringComparison.OrdinalIgnoreCase);
        byte[] body = csv ? Csv(envelopes) : JsonSerializer.SerializeToUtf8Bytes(new JsonObject
        {
            ["partner"] = agreement.Partner.Id,
            ["releases"] = new JsonArray(envelopes.Select(e => (JsonNode)e.DeepClone()).ToArray()),
            ["next"] = next,
            ["more"] = more,
            ["checkpoint"] = x.Checkpoints.Latest,
        });
        var hash = SHA256.HashData(body);
        var etag = "\"" + Convert.ToHexStringLower(hash)[..32] + "\"";
        int rows = envelopes.Sum(e => (e["payload"]?["rows"] as JsonArray)?.Count ?? 0);
        bool notModified = http.Request.Headers.IfNoneMatch.ToString().Split(',').Select(s => s.Trim()).Contains(etag);
        x.Audit.Append("pull", new JsonObject
        {
            ["partner"] = agreement.Partner.Id, ["keyId"] = key.Id, ["since"] = since, ["releases"] = envelopes.Count, ["rows"] = rows,
            ["format"] = csv ? "csv" : "json", ["status"] = notModified ? 304 : 200, ["sha256"] = Convert.ToHexStringLower(hash),
        });
        http.Response.Headers.ETag = etag;
        http.Response.Headers.CacheControl = "private, no-cache";
        if (notModified) return Results.StatusCode(304);
        if (csv) http.Response.Headers["X-Exchange-Signature"] = "none: CSV is unsigned; the JSON feed carries each release's signature";
        http.Response.Headers["X-Next-Cursor"] = next;
        return Results.Bytes(body, csv ? "text/csv; charset=utf-8" : "application/json");
    }

    private static byte[] Csv(List<JsonObject> envelopes)
    {
        var sb = new StringBuilder("sequence,window_start,window_end,district,domain,metric,aggregate,value\n");
        foreach (var e in envelopes)
        {
            var p = e["payload"]!;
            foreach (var row in p["rows"]!.AsArray())
            {
                sb.Append(p["sequence"]!.GetValue<long>()).Append(',')
                  .Append(p["window"]!["start"]!.GetValue<string>()).Append(',')
                  .Append(p["window"]!["end"]!.GetValue<string>()).Append(',')
                  .Append(CsvField(row!["district"]!.GetValue<string>())).Append(',')
                  .Append(row["domain"]!.GetValue<string>()).Append(',')
                  .Append(row["metric"]!.GetValue<string>()).Append(',')
                  .Append(row["aggregate"]!.GetValue<string>()).Append(',')
                  .Append(row["value"]!.GetValue<double>().ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            }
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static string CsvField(string s) => s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";

    private static IResult AgreementTerms(HttpContext http, ExchangeContext x)
    {
        var a = (Agreement)http.Items[PartnerItem]!;
        var now = DateTimeOffset.UtcNow;
        double spent = x.Ledger.Spent(a.Partner.Id, PrivacyPeriod(now));
        return Results.Json(new
        {
            partner = a.Partner,
            city = new { id = x.CityId, name = x.CityName },
            agreementVersion = a.Version,
            a.ValidFrom,
            a.ValidUntil,
            window = a.Window.ToString(),
            allowedLateness = a.AllowedLateness.ToString(),
            a.Districts,
            metrics = a.Metrics.Select(m => new
            {
                m.Domain, m.Metric, m.Aggregate, m.MinDevices,
                privacy = m.Personal
                    ? "differential privacy: clamped contributions, discrete Laplace noise on sum and device count, released when the noisy count reaches k and the noisy value the minimum volume"
                    : "exact aggregate of at least k devices, rounded to 0.01",
                epsilon = m.Personal ? m.Epsilon : (double?)null,
                clamp = m.Personal ? m.Clamp : null,
                granularity = m.Personal ? m.Granularity : (double?)null,
                minVolume = m.Personal ? m.MinVolume : null,
            }),
            budget = new
            {
                period = PrivacyPeriod(now),
                epsilonPerMonth = a.EpsilonPerMonth,
                spent,
                remaining = Math.Max(0, a.EpsilonPerMonth - spent),
            },
            releases = x.Releases.Count(a.Partner.Id),
            refusedForBudget = x.Releases.RefusedCount(a.Partner.Id),
        });
    }

    private static string PrivacyPeriod(DateTimeOffset t) => Privacy.PrivacyBudgetLedger.PeriodOf(t);
}

/// <summary>The partner API's limiters, one set per gateway.</summary>
public sealed class PartnerApiLimits : IDisposable
{
    public PartnerApiLimits(ExchangeOptions options)
    {
        RequestsPerMinute = Math.Max(1, options.RequestsPerMinute);
        AuthFailures = new AuthFailureThrottle(Math.Max(1, options.AuthFailuresPerMinute));
        // Partitioned by verified partner id: partitions are bounded by the partners holding a valid key.
        PerPartner = PartitionedRateLimiter.Create<string, string>(partner => RateLimitPartition.GetFixedWindowLimiter(partner, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = RequestsPerMinute,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));
    }

    public int RequestsPerMinute { get; }
    public AuthFailureThrottle AuthFailures { get; }
    public PartitionedRateLimiter<string> PerPartner { get; }

    public void Dispose()
    {
        AuthFailures.Dispose();
        PerPartner.Dispose();
    }
}

internal static partial class PartnerApiLog
{
    [LoggerMessage(EventId = 8140, EventName = "PartnerAuthThrottled", Level = LogLevel.Warning,
        Message = "Partner API: {Address} failed to authenticate {Failures} times within a minute; its requests get 429 until the minute is over")]
    public static partial void AuthThrottled(ILogger logger, string address, int failures);

    [LoggerMessage(EventId = 8141, EventName = "ReleaseFailedIntegrity", Level = LogLevel.Error,
        Message = "Release {Path} failed its integrity check ({Error}); it is not served")]
    public static partial void ReleaseFailedIntegrity(ILogger logger, string path, string error);
}
