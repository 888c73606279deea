using System.Text.Json;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Federation;

/// <summary>
/// /readyz on the operator listener shows a partner whose answers are refused: the exchange check
/// Degraded with the partner and the last error, readiness unaffected, and Healthy again after a
/// good pull; the refusal is a counter on /metrics.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class FederationHealthTests(ServicesFixture services)
{
    private static async Task<JsonElement> ExchangeCheck(FederationWorld w)
    {
        var (status, body) = await w.Gateway.GetJsonAsync("/readyz");
        Assert.Equal(200, status);
        Assert.True(body.GetProperty("ready").GetBoolean());
        return body.GetProperty("checks").GetProperty("exchange");
    }

    [Fact]
    public async Task A_refusing_partner_degrades_the_exchange_check_but_not_readiness_and_a_good_pull_heals_it()
    {
        var world = new FederationWorld();
        try
        {
            var w = await world.StartAsync(services, x => x.Partner.Add("flaky", FederationWorld.OurCity).WithReleases(1));
            var flaky = w.Partner.Personas["flaky"];
            await w.WaitSequenceAsync("flaky", 1);
            await Wait.UntilAsync(async () => (await ExchangeCheck(w)).GetProperty("status").GetString() == "Healthy",
                TimeSpan.FromSeconds(10), () => "exchange check not healthy after a good pull");

            flaky.Feed = (_, _, _) => Task.FromResult(Persona.Raw("""{"releases":null}"""));
            await w.WaitRefusedAsync("flaky", "format");
            var degraded = await ExchangeCheck(w);
            Assert.Equal("Degraded", degraded.GetProperty("status").GetString());
            Assert.Contains("partner flaky", degraded.GetProperty("description").GetString());
            Assert.Contains("releases", degraded.GetProperty("description").GetString());
            var (_, body) = await w.Gateway.GetJsonAsync("/readyz");
            var partner = body.GetProperty("exchange").GetProperty("partners")[0];
            Assert.Equal("flaky", partner.GetProperty("partner").GetString());
            Assert.False(partner.GetProperty("ok").GetBoolean());
            Assert.Contains("format", partner.GetProperty("lastError").GetString());
            await w.AssertGatewayAliveAsync();

            using (var http = new HttpClient())
            {
                var metrics = await http.GetStringAsync(w.Gateway.OperatorUrl + "/metrics");
                Assert.Contains("gateway_exchange_federation_refused", metrics);
                Assert.Contains("reason=\"format\"", metrics);
                Assert.Contains("gateway_exchange_federation_pulls", metrics);
            }

            flaky.Feed = (p, after, _) => Task.FromResult(p.Serve(after));
            flaky.Add(flaky.Release(2));
            await w.WaitSequenceAsync("flaky", 2);
            await Wait.UntilAsync(async () => (await ExchangeCheck(w)).GetProperty("status").GetString() == "Healthy",
                TimeSpan.FromSeconds(10), () => "exchange check not healthy again after a good pull");
            Assert.True(w.State.PullCount("flaky", ok: false) >= 1);
            Assert.True(w.State.PullCount("flaky", ok: true) >= 2);
        }
        finally
        {
            await world.DisposeAsync();
        }
    }
}
