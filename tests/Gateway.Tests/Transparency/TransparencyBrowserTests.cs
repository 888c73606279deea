using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Audit;
using CityGateway.Normalisation;
using CityGateway.Tests.ExchangeIntegration;
using CityGateway.Tests.Infrastructure;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using Xunit.Abstractions;

namespace CityGateway.Tests.Transparency;

/// <summary>
/// The transparency page as a visitor sees it: two cities that publish, release and federate both
/// ways, and city A's page opened in headless Chromium (Debian's chromium and chromium-driver,
/// driven by Selenium), in Indonesian from the browser's language and in English from the switch.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class TransparencyBrowserTests(ServicesFixture services, ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";
    private const string ChromeDriver = "/usr/bin/chromedriver";

    private static ChromeDriver Browser(string acceptLanguage, string windowSize)
    {
        if (!File.Exists(Chromium) || !File.Exists(ChromeDriver))
            Assert.Fail($"The browser test needs Debian's chromium and chromium-driver ({Chromium}, {ChromeDriver}): apt-get install chromium chromium-driver (deploy/test.sh installs them).");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Chromium };
        // --no-sandbox: tests run as root in CI, where chromium's sandbox cannot start.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=" + windowSize,
            "--lang=" + acceptLanguage.Split(',')[0]);
        options.AddUserProfilePreference("intl.accept_languages", acceptLanguage);
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    private static async Task<int> ReleaseAll(TwoCities cities)
    {
        int made = 0;
        foreach (var c in new[] { cities.A, cities.B }) made += await c.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        return made;
    }

    /// <summary>Every device id, DevEUI-style key, site and coordinate of a city's registry that a page must never show.</summary>
    private static List<string> Secrets(TwoCities.City city)
    {
        var registry = DeviceRegistry.LoadFile(city.Fleet.RegistryPath!);
        var secrets = new List<string>();
        foreach (var d in registry.Devices)
        {
            secrets.Add(d.Id);
            if (!string.IsNullOrEmpty(d.Site)) secrets.Add(d.Site);
            if (d.Latitude is { } lat) secrets.Add(lat.ToString("0.0000", CultureInfo.InvariantCulture));
            if (d.Longitude is { } lon) secrets.Add(lon.ToString("0.0000", CultureInfo.InvariantCulture));
            // The page's own number format (Indonesian writes 45,7640).
            if (d.Latitude is { } lat2) secrets.Add(lat2.ToString("0.0000", CultureInfo.InvariantCulture).Replace('.', ','));
            if (d.Longitude is { } lon2) secrets.Add(lon2.ToString("0.0000", CultureInfo.InvariantCulture).Replace('.', ','));
        }
        Assert.NotEmpty(secrets);
        return secrets;
    }

    private static void NoSecrets(string page, IEnumerable<string> secrets, string what)
    {
        foreach (var s in secrets) Assert.False(page.Contains(s, StringComparison.OrdinalIgnoreCase), $"{what} shows '{s}' from the device registry");
    }

    private void Charts(ChromeDriver driver)
    {
        var charts = driver.FindElements(By.CssSelector("figure.chart svg.plot"));
        Assert.NotEmpty(charts);
        var ours = driver.FindElements(By.CssSelector("svg.plot .series.ours"));
        var theirs = driver.FindElements(By.CssSelector("svg.plot .series.partner"));
        Assert.NotEmpty(ours);
        Assert.NotEmpty(theirs);
        foreach (var line in ours.Concat(theirs).Where(l => l.TagName == "polyline"))
        {
            var points = line.GetAttribute("points")!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(points.Length >= 2, $"a chart line has {points.Length} points");
            Assert.InRange(points.Length, 2, CityGateway.Exchange.Transparency.TransparencyReport.MaxPointsPerSeries);
        }
        // Drawn, not only present: the browser laid the lines out with a size.
        Assert.Contains(ours, l => l.Size.Width > 10);
        Assert.Contains(theirs, l => l.Size.Width > 10);
        output.WriteLine($"{charts.Count} charts, {ours.Count} lines of ours, {theirs.Count} of the partner's");
    }

    [Fact]
    public async Task A_visitor_reads_the_page_in_Indonesian_and_English_with_charts_of_both_cities_and_no_device_site_or_coordinate()
    {
        // Before the cities start: a missing browser fails here, with the reason, not after minutes.
        Browser("en", "412,900").Dispose();
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        Assert.True(await ReleaseAll(cities) > 0, "no releases were made");
        var a = cities.A;
        var received = PartnerReleaseHistory.PathIn(Path.Combine(a.DataPath, "federation", cities.B.Id));
        // A has kept B's figures, and B has pulled A's releases (the audit log of A says so).
        await Wait.UntilAsync(() =>
                File.Exists(received) && File.ReadLines(received).Any()
                && AuditLog.Summarise(Path.Combine(a.DataPath, "audit.jsonl")).Partners.Any(p => p.Partner == cities.B.Id && p.Recent?.Any(r => r.FirstPulled is not null) == true),
            TimeSpan.FromSeconds(60), () => "city A has not received city B's releases, or city B has not pulled city A's");

        var url = a.Url + "/transparency";
        var secrets = Secrets(a).Concat(Secrets(cities.B)).ToList();
        using (var driver = Browser("id-ID,id", "412,900"))
        {
            driver.Navigate().GoToUrl(url);
            Assert.Equal("id", driver.FindElement(By.TagName("html")).GetAttribute("lang"));
            Assert.Contains("apa yang kami bagikan kepada kota mitra", driver.FindElement(By.TagName("h1")).Text);
            Assert.Contains("CITYB", driver.FindElement(By.Id("agreements")).Text);
            Assert.Contains("Derau ditambahkan (privasi diferensial, ε 0,5 per jendela waktu)", driver.FindElement(By.Id("agreements")).Text);
            Assert.Contains("Anggaran privasi", driver.FindElement(By.Id("budget")).Text);
            Assert.Contains("Gateway exchange verify-audit", driver.FindElement(By.Id("checkpoint")).Text);
            Assert.Contains(a.Exchange.Signer.KeyId, driver.FindElement(By.Id("key")).Text);
            Assert.Contains("BEGIN PUBLIC KEY", driver.FindElement(By.Id("key")).Text);
            // The partner's releases and pulls, from A's audit log.
            var releases = driver.FindElement(By.Id("releases")).Text;
            Assert.Contains("CITYB", releases);
            Assert.DoesNotContain("belum pernah", releases.Split('\n').First(l => l.Contains("CITYB")));
            Charts(driver);
            NoSecrets(driver.PageSource, secrets, "the Indonesian page");
            Assert.Empty(driver.FindElements(By.TagName("script")));

            // The visible switch wins over the browser's language.
            driver.FindElement(By.LinkText("English")).Click();
            Assert.Contains("lang=en", driver.Url);
            Assert.Equal("en", driver.FindElement(By.TagName("html")).GetAttribute("lang"));
            Assert.Contains("what we share with partner cities", driver.FindElement(By.TagName("h1")).Text);
            Assert.Contains("Noise added (differential privacy, ε 0.5 per window)", driver.FindElement(By.Id("agreements")).Text);
            Charts(driver);
            NoSecrets(driver.PageSource, secrets, "the English page");
            driver.FindElement(By.LinkText("Bahasa Indonesia")).Click();
            Assert.Equal("id", driver.FindElement(By.TagName("html")).GetAttribute("lang"));
        }
        using (var driver = Browser("en-GB,en", "1280,900"))
        {
            driver.Navigate().GoToUrl(url);
            Assert.Equal("en", driver.FindElement(By.TagName("html")).GetAttribute("lang"));
            // Without horizontal scrolling on a desktop: the content is at most the window's width.
            var width = Convert.ToInt64(((IJavaScriptExecutor)driver).ExecuteScript("return document.documentElement.scrollWidth"), CultureInfo.InvariantCulture);
            Assert.InRange(width, 1, 1280);
        }

        // What the server sends: the headers, the raw source, the JSON twin, and nothing on the operator listener.
        using var http = new HttpClient();
        using var page = await http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", csp);
        Assert.DoesNotContain("script-src", csp);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var source = await page.Content.ReadAsStringAsync();
        NoSecrets(source, secrets, "the page's source");
        Assert.DoesNotContain("<script", source, StringComparison.OrdinalIgnoreCase);
        var json = await http.GetStringAsync(a.Url + "/transparency.json");
        NoSecrets(json, secrets, "the JSON twin");
        var twin = JsonNode.Parse(json)!;
        Assert.Equal(cities.B.Id, twin["partners"]![0]!["id"]!.GetValue<string>());
        Assert.Contains(twin["charts"]!["metrics"]!.AsArray(), c => c!["series"]!.AsArray().Any(s => !s!["ours"]!.GetValue<bool>()));
        Assert.Equal(a.Exchange.Signer.KeyId, twin["signingKey"]!["keyId"]!.GetValue<string>());
        var wellKnown = JsonNode.Parse(await http.GetStringAsync(a.Url + "/.well-known/city-exchange"))!;
        Assert.Equal(a.Url + "/transparency", wellKnown["transparency"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(a.Gateway.OperatorUrl + "/transparency")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(a.Gateway.OperatorUrl + "/transparency.json")).StatusCode);

        if (Environment.GetEnvironmentVariable("TRANSPARENCY_SCREENSHOT_DIR") is { Length: > 0 } dir) Screenshots(url, dir);
    }

    /// <summary>deploy/screenshot.sh against this gateway, phone and desktop, both languages (for a person to look at).</summary>
    private void Screenshots(string url, string dir)
    {
        Directory.CreateDirectory(dir);
        var script = Path.Combine(RepositoryRoot(), "deploy", "screenshot.sh");
        foreach (var (lang, size) in new[] { ("id", "412x5600"), ("en", "412x5600"), ("en", "1280x3800"), ("id", "1280x3800") })
        {
            var out_ = Path.Combine(dir, $"transparency-{lang}-{size}.png");
            using var p = Process.Start(new ProcessStartInfo("bash", [script, url, out_, lang, size]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"screenshot.sh exited {p.ExitCode}: {stderr}");
            output.WriteLine(stdout.Trim());
        }
    }

    private static string RepositoryRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "Gateway.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("Gateway.sln not found above " + AppContext.BaseDirectory);
    }
}
