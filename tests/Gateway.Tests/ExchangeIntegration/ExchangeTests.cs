using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CityGateway.Exchange;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

[Collection(ServicesCollection.Name)]
public sealed class ExchangeTests(ServicesFixture services, ITestOutputHelper output)
{
    private static HttpClient Client(string? key)
    {
        var http = new HttpClient();
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    /// <summary>Runs both cities' release jobs at <paramref name="now"/> (the current time if not given).</summary>
    private static async Task<int> ReleaseAll(TwoCities cities, DateTimeOffset? now = null)
    {
        int made = 0;
        foreach (var c in new[] { cities.A, cities.B }) made += await c.ReleaseJob.RunOnceAsync(now ?? DateTimeOffset.UtcNow, default);
        return made;
    }

    private async Task<Dictionary<string, double>> Values(string db, string query)
    {
        var rows = await services.Influx.RowsAsync(db, query);
        return rows.ToDictionary(
            r => $"{r["district"].GetString()}|{r["domain"].GetString()}|{r["metric"].GetString()}|{r["aggregate"].GetString()}|{r["time"].GetInt64()}",
            r => r["value"].GetDouble());
    }

    [Fact]
    public async Task Two_cities_exchange_signed_releases_and_each_holds_exactly_what_the_other_shared()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        int made = await ReleaseAll(cities);
        Assert.True(made >= 2 * 6, $"only {made} releases for two cities over two hours of 15-minute windows");

        foreach (var (from, to) in new[] { (cities.A, cities.B), (cities.B, cities.A) })
        {
            var shared = new Dictionary<string, double>();
            await Wait.UntilAsync(async () =>
            {
                shared = await Values(from.Database, $"SELECT value FROM shared WHERE \"partner\" = '{to.Id}' GROUP BY \"district\", \"domain\", \"metric\", \"aggregate\"");
                var received = await Values(to.Database, $"SELECT value FROM \"partner\" WHERE \"city\" = '{from.Id}' GROUP BY \"district\", \"domain\", \"metric\", \"aggregate\"");
                return shared.Count > 0 && received.Count == shared.Count;
            }, TimeSpan.FromSeconds(60), () => $"{to.Id} has not received what {from.Id} shared");
            var got = await Values(to.Database, $"SELECT value FROM \"partner\" WHERE \"city\" = '{from.Id}' GROUP BY \"district\", \"domain\", \"metric\", \"aggregate\"");
            Assert.Equal(shared.OrderBy(k => k.Key), got.OrderBy(k => k.Key));
            Assert.Contains(shared.Keys, k => k.Contains("|traffic|intensity|sum|"));
            Assert.Contains(shared.Keys, k => k.Contains("|environment|pm25|mean|"));
            output.WriteLine($"{from.Id} → {to.Id}: {from.Exchange.Releases.Count(to.Id)} releases, {shared.Count} cells, all received and equal");
        }
        Assert.Equal(0, cities.A.Federation.Rejected + cities.B.Federation.Rejected);
        var audit = AuditLog.Verify(Path.Combine(cities.A.DataPath, "audit.jsonl"));
        Assert.True(audit.Ok, audit.ToString());
        Assert.True(audit.Entries >= made / 2, "every release and pull is in the audit log");
    }

    [Fact]
    public async Task Partner_responses_leak_no_device_site_coordinate_fine_timestamp_or_small_cell_and_repeat_byte_for_byte()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        // One instant for both runs of the release job: a run at a later wall-clock time may find a
        // window that has just come due (every 15 minutes, one minute after a window ends) and rightly
        // release it, which is not the recomputation the second run is there to catch.
        var releasedAt = DateTimeOffset.UtcNow;
        await ReleaseAll(cities, releasedAt);
        var a = cities.A;
        using var http = Client(cities.A.KeyForPartner);
        var json = await http.GetByteArrayAsync(a.Url + "/api/exchange/v1/feed?limit=500");
        var again = await http.GetByteArrayAsync(a.Url + "/api/exchange/v1/feed?limit=500");
        Assert.Equal(json, again);
        using var csvRequest = new HttpRequestMessage(HttpMethod.Get, a.Url + "/api/exchange/v1/feed?limit=500") { Headers = { Accept = { new("text/csv") } } };
        var csv = await (await http.SendAsync(csvRequest)).Content.ReadAsStringAsync();
        var terms = await http.GetStringAsync(a.Url + "/api/exchange/v1/agreement");
        // The feed's audit checkpoint carries the time the city signed it (not a reading's time) and nothing else of the city's data.
        var feedObject = JsonNode.Parse(json)!.AsObject();
        var checkpoint = feedObject["checkpoint"]!.AsObject();
        Assert.Equal(new[] { "type", "city", "seq", "head", "time" }, checkpoint["payload"]!.AsObject().Select(m => m.Key).ToArray());
        feedObject.Remove("checkpoint");
        var everything = feedObject.ToJsonString() + "\n" + csv + "\n" + terms;

        // A release job run again changes nothing: released windows are never recomputed.
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(releasedAt, default));
        Assert.Equal(json, await http.GetByteArrayAsync(a.Url + "/api/exchange/v1/feed?limit=500"));

        var registry = DeviceRegistry.LoadFile(a.Fleet.RegistryPath!);
        foreach (var d in registry.Devices)
        {
            Assert.DoesNotContain(d.Id, everything);
            Assert.DoesNotContain(d.Site, everything);
            if (d.Latitude is { } lat) Assert.DoesNotContain(lat.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture), everything);
            if (d.Longitude is { } lon) Assert.DoesNotContain(lon.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture), everything);
        }
        foreach (Match m in Regex.Matches(everything, @"\d{4}-\d{2}-\d{2}T(\d{2}):(\d{2}):(\d{2})(\.\d+)?"))
        {
            var t = DateTimeOffset.Parse(m.Value + "Z", System.Globalization.CultureInfo.InvariantCulture);
            bool agreementDate = t.TimeOfDay == TimeSpan.Zero; // validity dates in the terms
            Assert.True(agreementDate || (t.Minute % TwoCities.WindowMinutes == 0 && t.Second == 0 && m.Groups[4].Length == 0),
                $"timestamp {m.Value} is finer than the {TwoCities.WindowMinutes}-minute window");
        }
        // Every released environment cell (exact values, exact k) had at least k = 3 contributing
        // devices in A's own data. Traffic and water cells are released on a noisy count against k,
        // so their exact device count is deliberately not what decides.
        var feed = JsonNode.Parse(json)!["releases"]!.AsArray();
        Assert.NotEmpty(feed);
        int cells = 0;
        foreach (var release in feed)
        {
            var p = release!["payload"]!;
            var start = DateTimeOffset.Parse(p["window"]!["start"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
            foreach (var row in p["rows"]!.AsArray().Where(r => r!["domain"]!.GetValue<string>() == "environment"))
            {
                var q = $"SELECT count(\"{row!["metric"]}\") FROM \"{row["domain"]}\" WHERE \"district\" = '{row["district"]}' " +
                        $"AND time >= {start.ToUnixTimeMilliseconds() * 1_000_000} AND time < {start.AddMinutes(TwoCities.WindowMinutes).ToUnixTimeMilliseconds() * 1_000_000} GROUP BY \"device\"";
                var devices = (await services.Influx.RowsAsync(a.Database, q)).Count;
                Assert.True(devices >= 3, $"cell {row} has {devices} devices");
                cells++;
            }
        }
        output.WriteLine($"scanned {json.Length + csv.Length + terms.Length} bytes of partner responses, {cells} cells, environment cells all with ≥ 3 devices");
    }

    [Fact]
    public async Task Partner_api_refuses_what_a_key_may_not_read()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        var a = cities.A;
        var feed = a.Url + "/api/exchange/v1/feed";
        var revoked = a.Exchange.Keys.Issue("cityb");
        a.Exchange.Keys.Revoke(revoked.Entry.Id);
        var cases = new (string What, string? Key, string Url, HttpStatusCode Status)[]
        {
            ("no key", null, feed, HttpStatusCode.Unauthorized),
            ("wrong key", "cgx.000000000000.nope", feed, HttpStatusCode.Unauthorized),
            ("malformed key", "hello", feed, HttpStatusCode.Unauthorized),
            ("revoked key", revoked.Key, feed, HttpStatusCode.Unauthorized),
            ("another partner's feed", cities.A.KeyForPartner, feed + "?partner=cityc", HttpStatusCode.Forbidden),
            ("oversized limit", cities.A.KeyForPartner, feed + "?limit=100000", HttpStatusCode.BadRequest),
            ("zero limit", cities.A.KeyForPartner, feed + "?limit=0", HttpStatusCode.BadRequest),
            ("malformed cursor", cities.A.KeyForPartner, feed + "?since=abc", HttpStatusCode.BadRequest),
            ("injected cursor", cities.A.KeyForPartner, feed + "?since=s1%20OR%201%3D1", HttpStatusCode.BadRequest),
            ("no key for the terms", null, a.Url + "/api/exchange/v1/agreement", HttpStatusCode.Unauthorized),
        };
        foreach (var c in cases)
        {
            using var http = Client(c.Key);
            using var response = await http.GetAsync(c.Url);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(c.Status == response.StatusCode, $"{c.What}: {(int)response.StatusCode} {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.DoesNotContain("releases", body);
            Assert.DoesNotContain("payload", body);
        }

        // A key belongs to one partner: a key issued to a city without an agreement reads nothing.
        var stranger = a.Exchange.Keys.Issue("cityc").Key;
        using (var http = Client(stranger)) Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync(feed)).StatusCode);

        // Rate limit per verified partner: a second key of the same partner shares its budget; beyond it 429 with Retry-After.
        var busy = a.Exchange.Keys.Issue("cityb").Key;
        using (var http = Client(busy))
        {
            HttpResponseMessage? limited = null;
            for (int i = 0; i < 200 && limited is null; i++)
            {
                var r = await http.GetAsync(feed);
                if (r.StatusCode == HttpStatusCode.TooManyRequests) limited = r;
                else Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            }
            Assert.NotNull(limited);
            Assert.True(limited!.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 carries Retry-After");
            Assert.Equal("application/problem+json", limited.Content.Headers.ContentType?.MediaType);
        }
        // The partner's other key shares that budget (a second key does not multiply it) ...
        using (var http = Client(cities.A.KeyForPartner)) Assert.Equal(HttpStatusCode.TooManyRequests, (await http.GetAsync(feed)).StatusCode);
        // ... and another partner is not affected by it (cityc has a valid key and no agreement: 403, not 429).
        using (var http = Client(stranger)) Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync(feed)).StatusCode);

        // The discovery document and the OpenAPI description are public.
        using (var http = Client(null))
        {
            var wk = JsonNode.Parse(await http.GetStringAsync(a.Url + "/.well-known/city-exchange"))!;
            Assert.Equal("citya", wk["cityId"]!.GetValue<string>());
            Assert.Contains("BEGIN PUBLIC KEY", wk["publicKey"]!.GetValue<string>());
            var openapi = JsonNode.Parse(await http.GetStringAsync(a.Url + "/api/exchange/v1/openapi.json"))!;
            Assert.Equal("3.0.3", openapi["openapi"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Tampered_releases_and_audit_lines_are_detected_and_forged_releases_are_refused()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        await cities.FeedAsync();
        await ReleaseAll(cities);
        var a = cities.A;
        using var http = Client(cities.A.KeyForPartner);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(a.Url + "/api/exchange/v1/feed")).StatusCode);
        var etagResponse = await http.GetAsync(a.Url + "/api/exchange/v1/feed");
        using (var conditional = new HttpRequestMessage(HttpMethod.Get, a.Url + "/api/exchange/v1/feed"))
        {
            conditional.Headers.IfNoneMatch.Add(etagResponse.Headers.ETag!);
            Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(conditional)).StatusCode);
        }

        // A forged release: B verifies against a key that is not A's (as if someone else signed).
        using (var forger = ReleaseSigner.Generate())
        {
            var options = Options.Create(new ExchangeOptions { CityId = "cityb", DataPath = cities.B.Dir.File("forged") });
            using var client = new FederationClient(options, new WriterQueues(), new FederationState(TestMetrics.New(), TimeProvider.System),
                TimeProvider.System, NullLogger<FederationClient>.Instance);
            var accepted = await client.PullOnceAsync(new PartnerFeedOptions
            {
                Id = "citya", WellKnownUrl = a.Url + "/.well-known/city-exchange", ApiKey = cities.A.KeyForPartner, PublicKeyPem = forger.PublicKeyPem,
            }, default);
            Assert.Equal(0, accepted);
            Assert.Equal(1, client.Rejected);
        }

        // One byte changed in a stored release: the gateway stops serving it.
        var file = Directory.GetFiles(Path.Combine(a.DataPath, "releases", "cityb"), "*.json").Order().First();
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var bytes = File.ReadAllBytes(file);
        int at = Encoding.UTF8.GetString(bytes).IndexOf("\"value\":", StringComparison.Ordinal) + 9;
        bytes[at] = (byte)(bytes[at] == (byte)'1' ? '2' : '1');
        File.WriteAllBytes(file, bytes);
        var tampered = await http.GetAsync(a.Url + "/api/exchange/v1/feed");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, tampered.StatusCode);
        Assert.DoesNotContain("payload", await tampered.Content.ReadAsStringAsync());

        // One byte changed in the audit log: verification names the first broken line.
        var auditPath = Path.Combine(a.DataPath, "audit.jsonl");
        Assert.True(AuditLog.Verify(auditPath).Ok);
        var audit = File.ReadAllBytes(auditPath);
        int middle = audit.Length / 2;
        audit[middle] = (byte)(audit[middle] == (byte)'a' ? 'b' : 'a');
        File.WriteAllBytes(auditPath + ".copy", audit);
        var broken = AuditLog.Verify(auditPath + ".copy");
        Assert.False(broken.Ok);
        Assert.NotNull(broken.FirstBreak);
        output.WriteLine("audit tamper: " + broken);
    }

    [Fact]
    public async Task A_release_that_would_exceed_the_monthly_budget_is_not_made_and_the_partner_sees_it()
    {
        // Each window with traffic and water cells costs ε 0.5 + 0.5; a budget of 2.5 pays for two.
        await using var cities = await TwoCities.StartAsync(services.Influx, epsilonPerMonth: 2.5);
        await cities.FeedAsync();
        var a = cities.A;
        int made = await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        using var http = Client(a.KeyForPartner);
        var terms = JsonNode.Parse(await http.GetStringAsync(a.Url + "/api/exchange/v1/agreement"))!;
        var budget = terms["budget"]!;
        output.WriteLine($"releases made {made}; budget {budget.ToJsonString()}; refused {terms["refusedForBudget"]}");
        Assert.True(budget["spent"]!.GetValue<double>() <= 2.5);
        Assert.True(budget["remaining"]!.GetValue<double>() < 1.0);
        Assert.True(terms["refusedForBudget"]!.GetValue<int>() > 0, "windows beyond the budget are refused");
        // Refused windows are not retried: a second run makes nothing and spends nothing.
        Assert.Equal(0, await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default));
        var summary = AuditLog.Summarise(Path.Combine(a.DataPath, "audit.jsonl"));
        Assert.True(summary.Verification.Ok);
        Assert.Contains(File.ReadLines(Path.Combine(a.DataPath, "audit.jsonl")), l => l.Contains("\"release_refused\""));
    }
}
