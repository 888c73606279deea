using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CityGateway.Core;
using Microsoft.AspNetCore.Localization;
using Microsoft.Extensions.Localization;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange.Transparency;

/// <summary>
/// The public transparency page on the partner listener: <c>GET /transparency</c> (HTML, in the
/// visitor's language) and <c>GET /transparency.json</c> (the same content for machines). No
/// login; bounded cost (one report per <see cref="TransparencyOptions.CacheSeconds"/>, rendered
/// once per language) and a request limit per client address.
/// </summary>
public static partial class TransparencyEndpoints
{
    public const string PagePath = "/transparency";
    public const string JsonPath = "/transparency.json";

    /// <summary>No script, no frames, no forms; inline styles and inline SVG only.</summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    public static void AddTransparency(IServiceCollection services, ExchangeOptions options)
    {
        services.AddLocalization();
        services.AddSingleton<TransparencyPage>();
        services.AddSingleton<TransparencyCache>();
        services.AddSingleton(_ => new TransparencyLimits(new AuthFailureThrottle(Math.Max(1, options.Transparency.RequestsPerMinute))));
    }

    /// <summary>The languages offered: English (the neutral resources) and every language whose satellite assembly is beside the gateway's.</summary>
    public static IReadOnlyList<string> LanguageCodes { get; } = DiscoverLanguages();

    private static List<string> DiscoverLanguages()
    {
        var assembly = typeof(TransparencyPage).Assembly;
        var folder = Path.GetDirectoryName(assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;
        var satellite = assembly.GetName().Name + ".resources.dll";
        var codes = new List<string> { "en" };
        foreach (var dir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            if (name == "en" || !File.Exists(Path.Combine(dir, satellite))) continue;
            try { _ = CultureInfo.GetCultureInfo(name); }
            catch (CultureNotFoundException) { continue; }
            codes.Add(name);
        }
        return codes;
    }

    /// <summary>
    /// The language of a request: <c>?lang=</c> when it names an offered language, else the best
    /// of <c>Accept-Language</c>, else English. A regional tag falls back to its language (id-ID → id).
    /// </summary>
    public static RequestLocalizationOptions Localization(IReadOnlyList<string> codes)
    {
        var cultures = codes.Select(c => CultureInfo.GetCultureInfo(c)).ToList();
        var options = new RequestLocalizationOptions
        {
            DefaultRequestCulture = new RequestCulture("en"),
            SupportedCultures = cultures,
            SupportedUICultures = cultures,
            FallBackToParentCultures = true,
            FallBackToParentUICultures = true,
            ApplyCurrentCultureToResponseHeaders = true,
        };
        options.RequestCultureProviders =
        [
            new QueryStringRequestCultureProvider { QueryStringKey = "lang", UIQueryStringKey = "lang" },
            new AcceptLanguageHeaderRequestCultureProvider { MaximumAcceptLanguageHeaderValuesToTry = 5 },
        ];
        return options;
    }

    public static void Map(WebApplication app)
    {
        var localization = Localization(LanguageCodes);
        // Only these two paths get a culture from the request; the rest of the gateway stays invariant.
        app.UseWhen(http => http.Request.Path.Equals(PagePath, StringComparison.Ordinal) || http.Request.Path.Equals(JsonPath, StringComparison.Ordinal),
            branch => branch.UseRequestLocalization(localization));
        app.MapGet(PagePath, Page);
        app.MapGet(JsonPath, Json);
    }

    private static bool Admit(HttpContext http, TransparencyLimits limits, ILogger logger, out IResult? refusal)
    {
        refusal = null;
        var address = http.Connection.RemoteIpAddress;
        if (limits.PerAddress.Throttled(address) is { } wait)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            refusal = Results.Problem(statusCode: 429, title: "Too many requests",
                detail: $"At most {limits.PerAddress.PerMinute} requests a minute from one address; retry after {Math.Ceiling(wait.TotalSeconds)} s.");
            return false;
        }
        // The failure counter is the per-address counter here: every request counts.
        limits.PerAddress.Failed(address);
        if (limits.PerAddress.Throttled(address) is not null) LogThrottled(logger, AuthFailureThrottle.PartitionOf(address), limits.PerAddress.PerMinute);
        return true;
    }

    private static void Secure(HttpContext http, int cacheSeconds)
    {
        var h = http.Response.Headers;
        h.ContentSecurityPolicy = ContentSecurityPolicy;
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        h.XFrameOptions = "DENY";
        h.CacheControl = "public, max-age=" + cacheSeconds.ToString(CultureInfo.InvariantCulture);
    }

    private static IResult Page(HttpContext http, TransparencyCache cache, TransparencyLimits limits, TransparencyPage page, ILoggerFactory loggers, IOptions<ExchangeOptions> options)
    {
        var logger = loggers.CreateLogger("CityGateway.Exchange.Transparency");
        if (!Admit(http, limits, logger, out var refusal)) return refusal!;
        var language = CultureInfo.CurrentUICulture.Name is { Length: > 0 } n && LanguageCodes.Contains(n) ? n : "en";
        var entry = cache.Get(logger);
        if (entry is null) return Unavailable();
        var html = entry.Html.GetOrAdd(language, _ =>
        {
            var names = LanguageCodes.Select(code => new TransparencyPage.Language(code, NameOf(page, code, language))).ToList();
            return Encoding.UTF8.GetBytes(page.Render(entry.Report, language, names));
        });
        Secure(http, options.Value.Transparency.CacheSeconds);
        http.Response.Headers.Vary = "Accept-Language";
        http.Response.Headers.ContentLanguage = language;
        return Results.Bytes(html, "text/html; charset=utf-8");
    }

    /// <summary>A language's name in itself (its own Language.Name), so a visitor finds theirs.</summary>
    private static string NameOf(TransparencyPage page, string code, string current)
    {
        if (code == current) return page.LanguageName();
        var saved = CultureInfo.CurrentUICulture;
        try
        {
            CultureInfo.CurrentUICulture = CultureInfo.GetCultureInfo(code);
            return page.LanguageName();
        }
        finally { CultureInfo.CurrentUICulture = saved; }
    }

    private static IResult Json(HttpContext http, TransparencyCache cache, TransparencyLimits limits, ILoggerFactory loggers, IOptions<ExchangeOptions> options)
    {
        var logger = loggers.CreateLogger("CityGateway.Exchange.Transparency");
        if (!Admit(http, limits, logger, out var refusal)) return refusal!;
        var entry = cache.Get(logger);
        if (entry is null) return Unavailable();
        Secure(http, options.Value.Transparency.CacheSeconds);
        return Results.Bytes(entry.Json, "application/json");
    }

    private static IResult Unavailable() => Results.Problem(statusCode: 503, title: "Transparency report unavailable",
        detail: "The report could not be made just now; the city's operators have been alerted. Try again in a minute.");

    [LoggerMessage(EventId = 8301, EventName = "TransparencyReportBuilt", Level = LogLevel.Debug,
        Message = "Transparency report made in {Milliseconds} ms: {Partners} partners, {Charts} charts")]
    internal static partial void LogBuilt(ILogger logger, long milliseconds, int partners, int charts);

    [LoggerMessage(EventId = 8302, EventName = "TransparencyReportFailed", Level = LogLevel.Error,
        Message = "The transparency report could not be made; the page answers 503 until it can")]
    internal static partial void LogFailed(ILogger logger, Exception error);

    [LoggerMessage(EventId = 8303, EventName = "TransparencyThrottled", Level = LogLevel.Warning,
        Message = "Transparency page: {Address} made {Requests} requests within a minute; it gets 429 until the minute is over")]
    private static partial void LogThrottled(ILogger logger, string address, int requests);
}

/// <summary>Requests per client address to the transparency page.</summary>
public sealed class TransparencyLimits(AuthFailureThrottle perAddress) : IDisposable
{
    public AuthFailureThrottle PerAddress { get; } = perAddress;
    public void Dispose() => PerAddress.Dispose();
}

/// <summary>
/// The report, made at most once per <see cref="TransparencyOptions.CacheSeconds"/> (by one
/// request while the others wait for it), and its renderings: the JSON, and the HTML per language
/// (at most one per offered language).
/// </summary>
public sealed class TransparencyCache(ExchangeContext exchange, IOptions<ExchangeOptions> options, TimeProvider? time = null)
{
    public sealed record Entry(TransparencyReport Report, byte[] Json, DateTimeOffset Made)
    {
        public ConcurrentDictionary<string, byte[]> Html { get; } = new(StringComparer.Ordinal);
    }

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private volatile Entry? _entry;

    public Entry? Get(ILogger logger)
    {
        var now = _time.GetUtcNow();
        var ttl = TimeSpan.FromSeconds(options.Value.Transparency.CacheSeconds);
        var entry = _entry;
        if (entry is not null && now - entry.Made < ttl) return entry;
        _gate.Wait();
        try
        {
            entry = _entry;
            if (entry is not null && now - entry.Made < ttl) return entry;
            var started = _time.GetTimestamp();
            try
            {
                var report = TransparencyReport.Build(exchange, options.Value, now);
                var baseUrl = options.Value.PublicBaseUrl?.TrimEnd('/') ?? "";
                var json = JsonSerializer.SerializeToUtf8Bytes(report.ToJson(baseUrl + TransparencyEndpoints.PagePath), new JsonSerializerOptions { WriteIndented = true });
                _entry = entry = new Entry(report, json, now);
                TransparencyEndpoints.LogBuilt(logger, (long)_time.GetElapsedTime(started).TotalMilliseconds, report.Partners.Count, report.Charts.Count);
                return entry;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException or FormatException)
            {
                TransparencyEndpoints.LogFailed(logger, e);
                // An older report is better than none.
                return _entry;
            }
        }
        finally { _gate.Release(); }
    }
}
