using System.Net;
using CityGateway.Tests.ExchangeIntegration;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Transparency;

/// <summary>
/// The public transparency page attacked as anyone on the internet could, against a running gateway:
/// a flood from one address is refused with 429 while another address and the partner API are still
/// served; odd languages and query strings fall back to English; the operator listener does not serve
/// the page; nothing it answers can run a script.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class TransparencyAttackTests(ServicesFixture services)
{
    [Fact]
    public async Task A_flood_odd_languages_and_the_operator_listener_get_nothing_they_should_not()
    {
        await using var city = OneCity.Create(services.Influx, ("cityb", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"));
        await city.StartAsync(city.NewKey("city-key"), "--Gateway:Exchange:Transparency:RequestsPerMinute=20");
        var page = city.Url + "/transparency";

        // A flood from one address: at most the limit is served within the minute, then 429 with Retry-After.
        int ok = 0, throttled = 0;
        using (var flood = OneCity.ClientFrom("127.0.0.21"))
        {
            for (int i = 0; i < 60; i++)
            {
                using var response = await flood.GetAsync(i % 2 == 0 ? page : page + ".json");
                if (response.StatusCode == HttpStatusCode.OK) ok++;
                else if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    throttled++;
                    Assert.NotNull(response.Headers.RetryAfter);
                }
                else Assert.Fail($"request {i}: {(int)response.StatusCode}");
            }
        }
        Assert.InRange(ok, 1, 20);
        Assert.Equal(60 - ok, throttled);

        // Another address is still served, and so is the partner API with its key.
        using (var visitor = OneCity.ClientFrom("127.0.0.22"))
            Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(page)).StatusCode);
        using (var partner = OneCity.ClientFrom("127.0.0.23", city.Keys["cityb"]))
            Assert.Equal(HttpStatusCode.OK, (await partner.GetAsync(city.Url + "/api/exchange/v1/feed")).StatusCode);

        // Odd languages and query strings: English, a page that cannot run a script, no echo of the input.
        using var http = OneCity.ClientFrom("127.0.0.24");
        foreach (var (query, acceptLanguage) in new[]
                 {
                     ("?lang=" + new string('x', 5000), "id"),
                     ("?lang=%3Cscript%3Ealert(1)%3C/script%3E", "en"),
                     ("?lang=zz-ZZ", "*;q=0.1, qq;q=2, ,,, " + new string('a', 3000)),
                     ("", "id;q=abc, en;q=, ;;;=="),
                 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, page + query);
            request.Headers.TryAddWithoutValidation("Accept-Language", acceptLanguage);
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.DoesNotContain("<script", body, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("xxxxxxxxxx", body);
            var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("default-src 'none'", csp);
            Assert.DoesNotContain("script-src", csp);
            Assert.Equal("nosniff", string.Join("", response.Headers.GetValues("X-Content-Type-Options")));
            Assert.True(body.Contains("<html lang=\"en\"") || body.Contains("<html lang=\"id\""), body[..Math.Min(200, body.Length)]);
        }

        // The operator listener does not serve the page.
        Assert.Equal(HttpStatusCode.NotFound, (await new HttpClient().GetAsync(city.Gateway!.OperatorUrl + "/transparency")).StatusCode);
    }
}
