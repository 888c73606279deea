using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Exchange.Transparency;
using CityGateway.Tests.ExchangeIntegration;
using CityGateway.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Localization;
using Microsoft.Extensions.Localization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Transparency;

/// <summary>The page as rendered from a real exchange data folder: escaping, bounds, languages.</summary>
public sealed class TransparencyPageTests : IDisposable
{
    private const string Hostile = "<script>alert(1)</script>";
    private const string HostileDistrict = "\"><svg onload=alert(2)>";
    private static readonly DateTimeOffset Now = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    private readonly TempDir _dir = new("transparency");

    public void Dispose() => _dir.Dispose();

    private static TransparencyPage Page()
    {
        var factory = new ResourceManagerStringLocalizerFactory(Options.Create(new LocalizationOptions()), NullLoggerFactory.Instance);
        return new TransparencyPage(new StringLocalizer<TransparencyPage>(factory));
    }

    private static IReadOnlyList<TransparencyPage.Language> Languages => [new("en", "English"), new("id", "Bahasa Indonesia")];

    private static string Render(TransparencyReport report, string language)
    {
        var saved = CultureInfo.CurrentUICulture;
        try
        {
            CultureInfo.CurrentUICulture = CultureInfo.GetCultureInfo(language);
            return Page().Render(report, language, Languages);
        }
        finally { CultureInfo.CurrentUICulture = saved; }
    }

    /// <summary>An exchange folder with one agreement (whose partner name is <paramref name="partnerName"/>), a key, and the options to read it.</summary>
    private (ExchangeContext Context, ExchangeOptions Options) Exchange(string partnerName, params string[] federatedPartners)
    {
        Directory.CreateDirectory(_dir.File("agreements"));
        var json = TwoCities.AgreementJson("harbour", "x").Replace("\"name\": \"x\"", "\"name\": " + JsonValue.Create(partnerName).ToJsonString(), StringComparison.Ordinal);
        File.WriteAllText(_dir.File("agreements/harbour.json"), json);
        Assert.Equal(0, ExchangeCommands.Run(["keygen", "--out", _dir.File("key.pem")], TextWriter.Null, TextWriter.Null));
        var options = new ExchangeOptions
        {
            Enabled = true, CityId = "citya", CityName = "City A", AgreementsPath = _dir.File("agreements"), DataPath = _dir.File("exchange"),
            Signing = new ExchangeSigningOptions { KeyFile = _dir.File("key.pem") }, PublicBaseUrl = "https://exchange.citya.example",
            Partners = federatedPartners.Select(p => new PartnerFeedOptions { Id = p, WellKnownUrl = "https://" + p + ".example/.well-known/city-exchange", ApiKey = "k" }).ToList(),
        };
        return (new ExchangeContext(Options.Create(options)), options);
    }

    private static JsonObject Payload(DateTimeOffset start, params (string District, double Value)[] rows) => new()
    {
        ["window"] = new JsonObject { ["start"] = start.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) },
        ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
        {
            ["district"] = r.District, ["domain"] = "traffic", ["metric"] = "intensity", ["aggregate"] = "sum", ["value"] = r.Value,
        }).ToArray()),
    };

    [Fact]
    public void A_hostile_partner_name_from_an_agreement_file_and_a_hostile_partner_district_are_escaped_everywhere()
    {
        var (x, options) = Exchange(Hostile, "harbour");
        using var _ = x;
        x.Records.Append(new ReleaseRecord("harbour", 1, Now.AddHours(-2), Payload(Now.AddHours(-2), ("centre", 40), ("north", 12))));
        x.Records.Append(new ReleaseRecord("harbour", 2, Now.AddHours(-1), Payload(Now.AddHours(-1), ("centre", 44), ("north", 15))));
        var folder = Directory.CreateDirectory(Path.Combine(options.DataPath, "federation", "harbour")).FullName;
        PartnerReleaseHistory.Append(folder, 1, Now.AddHours(-2), [new(Now.AddHours(-2), HostileDistrict, "traffic", "intensity", "sum", 30)]);
        PartnerReleaseHistory.Append(folder, 2, Now.AddHours(-1), [new(Now.AddHours(-1), HostileDistrict, "traffic", "intensity", "sum", 33)]);

        var report = TransparencyReport.Build(x, options, Now);
        var chart = Assert.Single(report.Charts, c => c.Metric == "intensity");
        Assert.Contains(chart.Series, s => !s.Ours && s.District == HostileDistrict && s.Points.Count == 2);
        Assert.Equal(2, chart.Series.Count(s => s.Ours));

        foreach (var language in new[] { "en", "id" })
        {
            var html = Render(report, language);
            Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("<svg onload", html, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("alert(1)</", html);
            Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html);
            Assert.Contains("&quot;&gt;&lt;svg onload=alert(2)&gt;", html);
            // Every element the page has is one of the few it writes: nothing came in with a name or district.
            var tags = Regex.Matches(html, "<([a-zA-Z][a-zA-Z0-9]*)").Select(m => m.Groups[1].Value.ToLowerInvariant()).ToHashSet();
            Assert.Subset(new HashSet<string> { "html", "head", "meta", "title", "style", "body", "header", "nav", "a", "strong", "h1", "h2", "h3", "p", "main",
                "section", "article", "ul", "ol", "li", "span", "div", "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "figure", "figcaption",
                "svg", "g", "line", "text", "polyline", "circle", "code", "pre", "footer" }, tags);
        }
        var json = report.ToJson("https://exchange.citya.example/transparency").ToJsonString();
        Assert.Equal(Hostile, JsonNode.Parse(json)!["partners"]![0]!["name"]!.GetValue<string>());
    }

    [Fact]
    public void Charts_are_bounded_in_lines_and_points()
    {
        var (x, options) = Exchange("Harbour", "harbour");
        using var _ = x;
        // 20 of our districts and 20 of the partner's, over 7 days of 15-minute windows.
        var folder = Directory.CreateDirectory(Path.Combine(options.DataPath, "federation", "harbour")).FullName;
        for (int w = 0; w < 7 * 96; w++)
        {
            var start = Now.AddDays(-7).AddMinutes(15 * w);
            x.Records.Append(new ReleaseRecord("harbour", w + 1, start, Payload(start, Enumerable.Range(0, 20).Select(d => ($"d{d:D2}", (double)(w % 50 + d))).ToArray())));
            PartnerReleaseHistory.Append(folder, w + 1, start, Enumerable.Range(0, 20).Select(d => new ReceivedValue(start, $"p{d:D2}", "traffic", "intensity", "sum", w % 30)).ToList());
        }
        var report = TransparencyReport.Build(x, options, Now);
        var chart = Assert.Single(report.Charts);
        Assert.Equal(TransparencyReport.MaxSeriesPerChart, chart.Series.Count);
        Assert.Equal(TransparencyReport.MaxSeriesPerChart / 2, chart.Series.Count(s => s.Ours));
        Assert.Equal(40 - TransparencyReport.MaxSeriesPerChart, chart.OmittedSeries);
        Assert.All(chart.Series, s => Assert.InRange(s.Points.Count, TransparencyReport.MaxPointsPerSeries / 2, TransparencyReport.MaxPointsPerSeries));

        var html = Render(report, "en");
        var svg = Regex.Match(html, "<svg class=\"plot\".*?</svg>", RegexOptions.Singleline).Value;
        var lines = Regex.Matches(svg, "<polyline[^>]*points=\"([^\"]*)\"");
        Assert.Equal(TransparencyReport.MaxSeriesPerChart, lines.Count);
        foreach (Match line in lines)
        {
            var points = line.Groups[1].Value.Split(' ');
            Assert.InRange(points.Length, 2, TransparencyReport.MaxPointsPerSeries);
            foreach (var p in points)
            {
                var xy = p.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                Assert.InRange(xy[0], 0, TransparencyChart.Width);
                Assert.InRange(xy[1], 0, TransparencyChart.Height);
            }
        }
        Assert.Contains($"{40 - TransparencyReport.MaxSeriesPerChart} more districts are not drawn", html);
        Assert.InRange(html.Length, 1, 200_000);
    }

    [Fact]
    public void Bound_averages_consecutive_windows()
    {
        var points = Enumerable.Range(0, 1000).Select(i => (Now.AddMinutes(15 * i), (double)i)).ToList();
        var bounded = TransparencyReport.Bound(points);
        Assert.InRange(bounded.Count, 1, TransparencyReport.MaxPointsPerSeries);
        Assert.Equal(points.Average(p => p.Item2), bounded.Average(p => p.Value), 0);
        Assert.True(bounded.Zip(bounded.Skip(1)).All(p => p.First.Time < p.Second.Time));
        Assert.Equal(points.Take(10), TransparencyReport.Bound(points.Take(10).ToList()));
    }

    private static async Task<string> LanguageOf(string? query, string? acceptLanguage)
    {
        var options = TransparencyEndpoints.Localization(["en", "id"]);
        string? seen = null;
        var middleware = new RequestLocalizationMiddleware(_ => { seen = CultureInfo.CurrentUICulture.Name; return Task.CompletedTask; }, Options.Create(options), NullLoggerFactory.Instance);
        var http = new DefaultHttpContext();
        if (query is not null) http.Request.QueryString = new QueryString(query);
        if (acceptLanguage is not null) http.Request.Headers.AcceptLanguage = acceptLanguage;
        await middleware.Invoke(http);
        return seen!;
    }

    [Fact]
    public async Task The_language_is_the_switch_else_the_browser_s_else_English()
    {
        Assert.Equal("id", await LanguageOf(null, "id-ID,id;q=0.9,en;q=0.5"));
        Assert.Equal("id", await LanguageOf(null, "fr-FR, id;q=0.7"));
        Assert.Equal("en", await LanguageOf(null, "en-GB,en;q=0.9"));
        Assert.Equal("en", await LanguageOf(null, "fr-FR"));
        Assert.Equal("en", await LanguageOf(null, null));
        Assert.Equal("en", await LanguageOf("?lang=en", "id-ID,id"));
        Assert.Equal("id", await LanguageOf("?lang=id", "en"));
        // A language that is not offered is ignored, the browser's is used.
        Assert.Equal("id", await LanguageOf("?lang=xx", "id"));
        Assert.Equal("en", await LanguageOf("?lang=%3Cscript%3E", null));
    }

    [Fact]
    public void Each_language_s_texts_numbers_and_dates_come_from_its_resources_and_html_lang_matches()
    {
        // The build puts the Indonesian resources beside the gateway: the page offers what is there.
        Assert.Equal(["en", "id"], TransparencyEndpoints.LanguageCodes.Where(c => c is "en" or "id"));
        var (x, options) = Exchange("Harbour");
        using var _ = x;
        var report = TransparencyReport.Build(x, options, Now);
        var en = Render(report, "en");
        var id = Render(report, "id");
        Assert.StartsWith("<!DOCTYPE html>\n<html lang=\"en\">", en);
        Assert.StartsWith("<!DOCTYPE html>\n<html lang=\"id\">", id);
        Assert.Contains("what we share with partner cities", en);
        Assert.Contains("apa yang kami bagikan kepada kota mitra", id);
        // ε 0.5 per window, "10 Mar 2026" / "10 Maret 2026" (validity dates: 1 Jan 2026).
        Assert.Contains("ε 0.5 per window", en);
        Assert.Contains("ε 0,5 per jendela waktu", id);
        Assert.Contains("1 Jan 2026", en);
        Assert.Contains("1 Januari 2026", id);
        Assert.Contains("Privacy budget, March 2026", en);
        Assert.Contains("Anggaran privasi, Maret 2026", id);
        Assert.Contains("1,000", en); // the partner's ε budget per month, grouped
        Assert.Contains("1.000", id);
        Assert.Contains("<a lang=\"id\" hreflang=\"id\" href=\"?lang=id\">Bahasa Indonesia</a>", en);
        Assert.Contains("<a lang=\"en\" hreflang=\"en\" href=\"?lang=en\">English</a>", id);
        Assert.DoesNotContain("<script", en + id, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("<meta name=\"viewport\"", id);
    }

    [Fact]
    public void Every_text_of_the_page_is_translated_in_every_language_file()
    {
        var folder = Path.Combine(RepositoryRoot(), "gateway", "Exchange", "Transparency");
        var neutral = Names(Path.Combine(folder, "TransparencyPage.resx"));
        var files = Directory.GetFiles(folder, "TransparencyPage.*.resx");
        Assert.NotEmpty(files);
        foreach (var file in files) Assert.Equal(neutral.Order(), Names(file).Order());
    }

    [Fact]
    public void Wrong_settings_are_reported_at_start_naming_the_full_key()
    {
        var errors = new List<string>();
        new TransparencyOptions { CacheSeconds = 0, ChartDays = 40, RequestsPerMinute = 0 }.Validate(errors);
        Assert.Equal(3, errors.Count);
        Assert.StartsWith("Gateway:Exchange:Transparency:CacheSeconds: 0 is not between 1 and 3600", errors[0]);
        Assert.StartsWith("Gateway:Exchange:Transparency:ChartDays: 40 is not between 1 and 31", errors[1]);
        Assert.StartsWith("Gateway:Exchange:Transparency:RequestsPerMinute: must be at least 1", errors[2]);
        errors.Clear();
        new TransparencyOptions().Validate(errors);
        Assert.Empty(errors);
    }

    private static List<string> Names(string resx) =>
        System.Xml.Linq.XDocument.Load(resx).Root!.Elements("data").Select(e => e.Attribute("name")!.Value).ToList();

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Gateway.sln not found above " + AppContext.BaseDirectory);
    }
}
