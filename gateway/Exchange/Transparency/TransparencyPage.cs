using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Localization;

namespace CityGateway.Exchange.Transparency;

/// <summary>
/// Renders a <see cref="TransparencyReport"/> as one HTML page: no script, inline CSS that reflows
/// to a phone's width, charts as inline SVG. Every text comes from the resources of this class
/// (TransparencyPage.resx, TransparencyPage.&lt;lang&gt;.resx) through <see cref="IStringLocalizer"/>;
/// every string from outside (partner names and districts from agreement files and partner feeds)
/// is HTML-escaped where it is written.
/// </summary>
public sealed class TransparencyPage(IStringLocalizer<TransparencyPage> text)
{
    /// <summary>A language the page is offered in: its code and its name in itself.</summary>
    public sealed record Language(string Code, string Name);

    private static string H(string? s) => WebUtility.HtmlEncode(s ?? "");

    /// <param name="language">The language of the texts (the current UI culture's name): written to &lt;html lang&gt;.</param>
    /// <param name="languages">The languages offered in the switch.</param>
    public string Render(TransparencyReport report, string language, IReadOnlyList<Language> languages)
    {
        var f = PageFormat.From(text);
        var sb = new StringBuilder(32 * 1024);
        sb.Append("<!DOCTYPE html>\n<html lang=\"").Append(H(language)).Append("\">\n<head>\n<meta charset=\"utf-8\">\n")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
          .Append("<title>").Append(H(T("Title", report.CityName))).Append("</title>\n")
          .Append("<style>").Append(Css).Append("</style>\n</head>\n<body>\n");

        sb.Append("<header><nav class=\"lang\" aria-label=\"").Append(H(T("LanguageSwitch"))).Append("\">");
        foreach (var l in languages)
        {
            if (l.Code == language) sb.Append("<strong lang=\"").Append(H(l.Code)).Append("\">").Append(H(l.Name)).Append("</strong> ");
            else sb.Append("<a lang=\"").Append(H(l.Code)).Append("\" hreflang=\"").Append(H(l.Code)).Append("\" href=\"?lang=").Append(H(Uri.EscapeDataString(l.Code))).Append("\">").Append(H(l.Name)).Append("</a> ");
        }
        sb.Append("</nav>\n<h1>").Append(H(T("Heading", report.CityName))).Append("</h1>\n<p>").Append(H(T("Intro"))).Append("</p>\n")
          .Append("<p class=\"meta\">").Append(H(T("Generated", f.DateTime(report.GeneratedAt)))).Append(" · <a href=\"transparency.json\">")
          .Append(H(T("JsonLink"))).Append("</a></p>\n")
          .Append("<p class=\"guarantee\">").Append(H(T("Guarantee"))).Append("</p></header>\n<main>\n");

        Agreements(sb, report, f);
        Releases(sb, report, f);
        Budget(sb, report, f);
        Charts(sb, report, f);
        Checkpoint(sb, report, f);
        sb.Append("<section id=\"key\"><h2>").Append(H(T("KeyHeading"))).Append("</h2>\n<p>").Append(H(T("KeyIntro"))).Append("</p>\n<p>")
          .Append(H(T("KeyId"))).Append(" <code>").Append(H(report.KeyId)).Append("</code></p>\n<pre>").Append(H(report.PublicKeyPem.Trim())).Append("</pre></section>\n");
        sb.Append("</main>\n<footer><p>").Append(H(T("Footer"))).Append("</p></footer>\n</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>The name of the current UI language, in that language.</summary>
    public string LanguageName() => text["Language.Name"].Value;

    private string T(string name, params object[] args) => args.Length == 0 ? text[name].Value : text[name, args].Value;

    private string MetricName(string domain, string metric)
    {
        var s = text["Metric." + domain + "." + metric];
        return s.ResourceNotFound ? domain + " · " + metric : s.Value;
    }

    private string AggregateName(string aggregate)
    {
        var s = text["Aggregate." + aggregate];
        return s.ResourceNotFound ? aggregate : s.Value;
    }

    private string DatasetName(string dataset)
    {
        var s = text["Dataset." + dataset];
        return s.ResourceNotFound ? dataset : s.Value;
    }

    private string WindowText(TimeSpan window) => window.TotalMinutes < 60 || window.TotalMinutes % 60 != 0
        ? T("Window.Minutes", (int)window.TotalMinutes)
        : window.TotalHours == 1 ? T("Window.Hour") : T("Window.Hours", (int)window.TotalHours);

    private string Protection(MetricTerms m, PageFormat f) => m.Noised
        ? T("Protection.Noise", f.Number(m.Epsilon ?? 0), m.MinDevices, f.Number(m.MinVolume ?? 0))
        : T("Protection.Exact", m.MinDevices);

    private void Agreements(StringBuilder sb, TransparencyReport r, PageFormat f)
    {
        sb.Append("<section id=\"agreements\"><h2>").Append(H(T("AgreementsHeading"))).Append("</h2>\n");
        if (r.Partners.Count == 0) sb.Append("<p>").Append(H(T("NoAgreements"))).Append("</p>\n");
        foreach (var p in r.Partners)
        {
            sb.Append("<article class=\"card\"><h3>").Append(H(p.PartnerName)).Append("</h3>\n<ul class=\"facts\">")
              .Append("<li>").Append(H(T("ValidFromUntil", f.Date(p.ValidFrom), f.Date(p.ValidUntil)))).Append(" <span class=\"badge ")
              .Append(p.InForce ? "on" : "off").Append("\">").Append(H(T(p.InForce ? "InForce" : "NotInForce"))).Append("</span></li>")
              .Append("<li>").Append(H(T("Districts", p.Districts.Contains("*") ? T("AllDistricts") : string.Join(", ", p.Districts)))).Append("</li>")
              .Append("<li>").Append(H(T("WindowIs", WindowText(p.Window)))).Append("</li></ul>\n")
              .Append("<div class=\"scroll\"><table><thead><tr><th>").Append(H(T("Col.Metric"))).Append("</th><th>").Append(H(T("Col.Aggregate")))
              .Append("</th><th>").Append(H(T("Col.Protection"))).Append("</th></tr></thead><tbody>");
            foreach (var m in p.Metrics)
                sb.Append("<tr><td>").Append(H(MetricName(m.Domain, m.Metric))).Append("</td><td>").Append(H(AggregateName(m.Aggregate)))
                  .Append("</td><td>").Append(H(Protection(m, f))).Append("</td></tr>");
            sb.Append("</tbody></table></div></article>\n");
        }
        sb.Append("</section>\n");
    }

    private void Releases(StringBuilder sb, TransparencyReport r, PageFormat f)
    {
        sb.Append("<section id=\"releases\"><h2>").Append(H(T("ReleasesHeading"))).Append("</h2>\n<p>").Append(H(T("ReleasesIntro"))).Append("</p>\n");
        if (!r.AuditIntact) sb.Append("<p class=\"warn\">").Append(H(T("AuditBroken", r.AuditEntries))).Append("</p>\n");
        sb.Append("<div class=\"scroll\"><table><thead><tr><th>").Append(H(T("Col.Partner"))).Append("</th><th>").Append(H(T("Col.Releases")))
          .Append("</th><th>").Append(H(T("Col.Rows"))).Append("</th><th>").Append(H(T("Col.LastRelease"))).Append("</th><th>").Append(H(T("Col.Pulls")))
          .Append("</th><th>").Append(H(T("Col.LastPull"))).Append("</th></tr></thead><tbody>");
        foreach (var p in r.Partners)
        {
            var a = p.Audit;
            sb.Append("<tr><td>").Append(H(p.PartnerName)).Append("</td><td class=\"n\">").Append(H(f.Integer(a?.Releases ?? 0)))
              .Append("</td><td class=\"n\">").Append(H(f.Integer(a?.RowsReleased ?? 0)))
              .Append("</td><td>").Append(H(a?.LastRelease is { } lr ? f.DateTime(lr) : T("Never")))
              .Append("</td><td class=\"n\">").Append(H(f.Integer(a?.Pulls ?? 0)))
              .Append("</td><td>").Append(H(a?.LastPull is { } lp ? f.DateTime(lp) : T("Never"))).Append("</td></tr>");
        }
        sb.Append("</tbody></table></div>\n");
        foreach (var p in r.Partners)
        {
            var recent = p.Audit?.Recent ?? [];
            if (recent.Count == 0) continue;
            sb.Append("<details><summary>").Append(H(T("RecentReleases", p.PartnerName, recent.Count))).Append("</summary><div class=\"scroll\"><table><thead><tr><th>#</th><th>")
              .Append(H(T("Col.Window"))).Append("</th><th>").Append(H(T("Col.Rows"))).Append("</th><th>").Append(H(T("Col.Released"))).Append("</th><th>")
              .Append(H(T("Col.FirstPulled"))).Append("</th></tr></thead><tbody>");
            foreach (var e in recent.Reverse())
                sb.Append("<tr><td class=\"n\">").Append(H(f.Integer(e.Sequence))).Append("</td><td>").Append(H(e.WindowStart is { } w ? f.DateTime(w) : "–"))
                  .Append("</td><td class=\"n\">").Append(H(f.Integer(e.Rows))).Append("</td><td>").Append(H(f.DateTime(e.Released)))
                  .Append("</td><td>").Append(H(e.FirstPulled is { } fp ? f.DateTime(fp) : T("NotYet"))).Append("</td></tr>");
            sb.Append("</tbody></table></div></details>\n");
        }
        sb.Append("</section>\n");
    }

    private void Budget(StringBuilder sb, TransparencyReport r, PageFormat f)
    {
        sb.Append("<section id=\"budget\"><h2>").Append(H(T("BudgetHeading", f.Month(r.GeneratedAt)))).Append("</h2>\n<p>").Append(H(T("BudgetIntro"))).Append("</p>\n");
        void Row(string who, double spent, double budget)
        {
            double left = Math.Max(0, budget - spent);
            int percent = budget > 0 ? (int)Math.Clamp(Math.Round(100 * spent / budget), 0, 100) : 0;
            sb.Append("<tr><td>").Append(H(who)).Append("</td><td class=\"n\">").Append(H(f.Number(spent))).Append("</td><td class=\"n\">").Append(H(f.Number(left)))
              .Append("</td><td class=\"n\">").Append(H(f.Number(budget))).Append("</td><td><span class=\"bar\"><span style=\"width:")
              .Append(percent.ToString(CultureInfo.InvariantCulture)).Append("%\"></span></span></td></tr>");
        }
        string Head(string first) => "<div class=\"scroll\"><table><thead><tr><th>" + H(first) + "</th><th>" + H(T("Col.Spent")) + "</th><th>" + H(T("Col.Left"))
                                     + "</th><th>" + H(T("Col.Budget")) + "</th><th></th></tr></thead><tbody>";
        sb.Append("<h3>").Append(H(T("PartnerBudgets"))).Append("</h3>").Append(Head(T("Col.Partner")));
        foreach (var p in r.Partners) Row(p.PartnerName, p.EpsilonSpentThisMonth, p.EpsilonPerMonth);
        sb.Append("</tbody></table></div>\n");
        if (r.CityBudget.Count > 0)
        {
            sb.Append("<h3>").Append(H(T("CityBudgets"))).Append("</h3>").Append(Head(T("Col.Dataset")));
            foreach (var b in r.CityBudget) Row(DatasetName(b.Dataset), b.Spent, b.Budget);
            sb.Append("</tbody></table></div>\n");
        }
        sb.Append("</section>\n");
    }

    private void Charts(StringBuilder sb, TransparencyReport r, PageFormat f)
    {
        sb.Append("<section id=\"charts\"><h2>").Append(H(T("ChartsHeading", r.ChartDays))).Append("</h2>\n<p>").Append(H(T("ChartsIntro"))).Append("</p>\n");
        if (r.Charts.Count == 0) sb.Append("<p>").Append(H(T("NoCharts"))).Append("</p>\n");
        foreach (var c in r.Charts)
        {
            var title = MetricName(c.Domain, c.Metric) + " (" + AggregateName(c.Aggregate) + ")";
            sb.Append("<figure class=\"chart\"><figcaption>").Append(H(title)).Append("</figcaption>\n");
            TransparencyChart.Svg(sb, c, title, f);
            sb.Append("<ul class=\"legend\">");
            for (int i = 0; i < c.Series.Count; i++)
            {
                var s = c.Series[i];
                sb.Append("<li><svg width=\"28\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" y1=\"5\" x2=\"28\" y2=\"5\" stroke=\"")
                  .Append(TransparencyChart.Colour(i)).Append("\" stroke-width=\"3\"").Append(s.Ours ? "" : " stroke-dasharray=\"6 4\"").Append("/></svg> ")
                  .Append(H(T(s.Ours ? "OurCity" : "PartnerCity", s.CityName))).Append(": ").Append(H(s.District)).Append("</li>");
            }
            sb.Append("</ul>");
            if (c.OmittedSeries > 0) sb.Append("<p class=\"meta\">").Append(H(T("OmittedSeries", c.OmittedSeries))).Append("</p>");
            sb.Append("</figure>\n");
        }
        sb.Append("</section>\n");
    }

    private void Checkpoint(StringBuilder sb, TransparencyReport r, PageFormat f)
    {
        sb.Append("<section id=\"checkpoint\"><h2>").Append(H(T("CheckpointHeading"))).Append("</h2>\n<p>").Append(H(T("CheckpointIntro"))).Append("</p>\n");
        if (r.Checkpoint is not { } cp)
        {
            sb.Append("<p>").Append(H(T("NoCheckpoint"))).Append("</p></section>\n");
            return;
        }
        sb.Append("<ul class=\"facts\"><li>").Append(H(T("CheckpointEntry", f.Integer(cp.Seq)))).Append("</li><li>").Append(H(T("CheckpointSigned", f.DateTime(cp.Time))))
          .Append("</li><li>").Append(H(T("KeyId"))).Append(" <code>").Append(H(cp.KeyId)).Append("</code></li><li>")
          .Append(H(T("CheckpointHead"))).Append(" <code class=\"wrap\">").Append(H(cp.Head)).Append("</code></li></ul>\n<pre>").Append(H(cp.EnvelopeJson)).Append("</pre>\n")
          .Append("<h3>").Append(H(T("VerifyHeading"))).Append("</h3>\n<ol><li>").Append(H(T("Verify1"))).Append("</li><li>").Append(H(T("Verify2")))
          .Append("</li><li>").Append(H(T("Verify3"))).Append("</li></ol>\n")
          .Append("<pre>Gateway exchange verify-audit --file audit.jsonl --checkpoint checkpoint.json --public-key city-key.pem</pre>\n<p>")
          .Append(H(T("VerifyResult"))).Append("</p></section>\n");
    }

    // One column, wide enough for a desktop, reflowing to a phone; tables scroll sideways inside their box.
    private const string Css =
        "*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1d2530;background:#f5f7fa}" +
        "header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}header{padding-top:1rem}h1{font-size:1.6rem;line-height:1.25;margin:.5rem 0}" +
        "h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:2px solid #d5dce5;padding-bottom:.25rem}h3{font-size:1.05rem;margin:.5rem 0}" +
        ".lang{text-align:right;font-size:.95rem}.lang a,.lang strong{display:inline-block;padding:.3rem .6rem;margin-left:.25rem;border-radius:.3rem}" +
        ".lang a{color:#0b57a4;border:1px solid #b8c7d9;text-decoration:none}.lang strong{background:#0b57a4;color:#fff}" +
        ".meta{color:#536070;font-size:.9rem}.guarantee{background:#e6f4ea;border-left:4px solid #2e7d32;padding:.5rem .75rem}" +
        ".warn{background:#fdecea;border-left:4px solid #c62828;padding:.5rem .75rem}" +
        ".card{background:#fff;border:1px solid #d5dce5;border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0}.facts{padding-left:1.2rem;margin:.25rem 0 .5rem}" +
        ".badge{font-size:.8rem;padding:.05rem .45rem;border-radius:1rem;white-space:nowrap}.badge.on{background:#e6f4ea;color:#1b5e20}.badge.off{background:#eceff1;color:#455a64}" +
        ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}th,td{border:1px solid #d5dce5;padding:.35rem .5rem;text-align:left;vertical-align:top}" +
        "th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}" +
        ".bar{display:inline-block;width:6rem;height:.7rem;background:#e3e8ef;border-radius:.35rem;overflow:hidden}.bar span{display:block;height:100%;background:#0b57a4}" +
        "details{margin:.5rem 0}summary{cursor:pointer;color:#0b57a4}" +
        ".chart{margin:1rem 0;background:#fff;border:1px solid #d5dce5;border-radius:.5rem;padding:.5rem}.chart figcaption{font-weight:600}" +
        ".chart svg.plot{width:100%;height:auto;display:block}.legend{list-style:none;padding:0;margin:.25rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.9rem}" +
        "pre{background:#1d2530;color:#e8edf3;padding:.75rem;border-radius:.4rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.8rem}" +
        "code{font-size:.88em;background:#e9edf2;padding:0 .2rem;border-radius:.2rem}code.wrap{word-break:break-all}" +
        "footer{padding:1.5rem 1rem 2rem;color:#536070;font-size:.9rem}a{color:#0b57a4}" +
        "@media (max-width:30rem){body{font-size:15px}h1{font-size:1.3rem}th,td{padding:.3rem}.bar{width:3.5rem}}";
}

/// <summary>
/// How numbers and dates are written in the page's language, read from the same resources as its
/// texts (Format.*): the gateway runs with invariant globalization (no ICU), so a language brings
/// its separators, date patterns and month names with its .resx file.
/// </summary>
public sealed class PageFormat
{
    private readonly CultureInfo _culture;
    private readonly string _dateTime, _date, _month;

    private PageFormat(CultureInfo culture, string dateTime, string date, string month)
    {
        _culture = culture;
        _dateTime = dateTime;
        _date = date;
        _month = month;
    }

    public static PageFormat From(IStringLocalizer text)
    {
        var culture = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        string Get(string name, string fallback) => text[name] is { ResourceNotFound: false, Value: { Length: > 0 } v } ? v : fallback;
        culture.NumberFormat.NumberDecimalSeparator = Get("Format.Decimal", ".");
        culture.NumberFormat.NumberGroupSeparator = Get("Format.Group", ",");
        var months = Get("Format.Months", "Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec").Split(',', StringSplitOptions.TrimEntries);
        var full = Get("Format.MonthNames", "January,February,March,April,May,June,July,August,September,October,November,December").Split(',', StringSplitOptions.TrimEntries);
        if (months.Length == 12) culture.DateTimeFormat.AbbreviatedMonthNames = culture.DateTimeFormat.AbbreviatedMonthGenitiveNames = [.. months, ""];
        if (full.Length == 12) culture.DateTimeFormat.MonthNames = culture.DateTimeFormat.MonthGenitiveNames = [.. full, ""];
        return new PageFormat(culture, Get("Format.DateTime", "d MMM yyyy, HH:mm 'UTC'"), Get("Format.Date", "d MMM yyyy"), Get("Format.Month", "MMMM yyyy"));
    }

    public string DateTime(DateTimeOffset t) => t.UtcDateTime.ToString(_dateTime, _culture);
    public string Date(DateTimeOffset t) => t.UtcDateTime.ToString(_date, _culture);
    public string Month(DateTimeOffset t) => t.UtcDateTime.ToString(_month, _culture);
    /// <summary>Short date and time for a chart's axis.</summary>
    public string Axis(DateTimeOffset t) => t.UtcDateTime.ToString("d MMM HH:mm", _culture);
    public string Integer(long n) => n.ToString("N0", _culture);

    /// <summary>Up to 3 decimals, without trailing zeros, with the language's separators.</summary>
    public string Number(double d)
    {
        var s = Math.Round(d, 3).ToString("#,0.###", _culture);
        return s == "-0" ? "0" : s;
    }
}
