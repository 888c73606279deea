using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>A running gateway signs a checkpoint of its audit log after each release and serves it to its partner.</summary>
[Collection(ServicesCollection.Name)]
public sealed class AuditCheckpointIntegrationTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task A_checkpoint_follows_each_release_and_is_served_signed_at_checkpoint_and_in_the_feed()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        var a = cities.A;
        using var partner = new HttpClient();
        partner.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", a.KeyForPartner);
        var checkpointFile = Path.Combine(a.DataPath, AuditCheckpoints.FileName);

        // Before the first release there is nothing to vouch for; without a key there is nothing at all.
        using (var none = await partner.GetAsync(a.Url + "/api/exchange/v1/checkpoint"))
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        using (var anonymous = await new HttpClient().GetAsync(a.Url + "/api/exchange/v1/checkpoint"))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Null(JsonNode.Parse(await partner.GetStringAsync(a.Url + "/api/exchange/v1/feed"))!["checkpoint"]);

        await cities.FeedAsync();
        int made = await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        Assert.True(made >= 6, $"only {made} releases");

        // One checkpoint per release, each vouching for a verified head at or after its release entry.
        var auditPath = Path.Combine(a.DataPath, "audit.jsonl");
        var entries = File.ReadAllLines(auditPath).Select(l => JsonNode.Parse(l)!).ToList();
        var releaseSeqs = entries.Where(e => (string)e["kind"]! == "release").Select(e => (long)e["seq"]!).ToList();
        var kept = File.ReadAllLines(checkpointFile).Select(l => AuditCheckpoint.Parse(JsonNode.Parse(l), out _)!).ToList();
        Assert.Equal(made, releaseSeqs.Count);
        Assert.Equal(made, kept.Count);
        for (int i = 0; i < made; i++)
        {
            Assert.True(kept[i].Seq >= releaseSeqs[i] && (i + 1 == made || kept[i].Seq < releaseSeqs[i + 1]),
                $"checkpoint {i + 1} covers seq {kept[i].Seq}, release {i + 1} is seq {releaseSeqs[i]}");
            Assert.Equal((string)entries[(int)kept[i].Seq - 1]["hash"]!, kept[i].Head);
            Assert.Equal("citya", kept[i].City);
        }

        // Served: the latest, signed with the key of the well-known document.
        var wellKnown = JsonNode.Parse(await new HttpClient().GetStringAsync(a.Url + "/.well-known/city-exchange"))!;
        var publicKey = (string)wellKnown["publicKey"]!;
        var served = JsonNode.Parse(await partner.GetStringAsync(a.Url + "/api/exchange/v1/checkpoint"))!.AsObject();
        Assert.True(SignedDocument.VerifyEnvelope(served, publicKey, out var error), error);
        Assert.Equal(kept[^1].Seq, (long)served["payload"]!["seq"]!);
        Assert.Equal(kept[^1].Head, (string)served["payload"]!["head"]!);

        var feed = JsonNode.Parse(await partner.GetStringAsync(a.Url + "/api/exchange/v1/feed?limit=500"))!;
        Assert.True(JsonNode.DeepEquals(served, feed["checkpoint"]), "the feed carries the latest checkpoint");
        using var csvRequest = new HttpRequestMessage(HttpMethod.Get, a.Url + "/api/exchange/v1/feed?limit=500") { Headers = { Accept = { new("text/csv") } } };
        var csv = await (await partner.SendAsync(csvRequest)).Content.ReadAsStringAsync();
        Assert.StartsWith("sequence,window_start,", csv);
        Assert.DoesNotContain("audit-checkpoint", csv);

        // The partner keeps it and later holds the city's log to it.
        var folder = Path.Combine(cities.B.DataPath, "partner-checkpoints", "citya");
        var keep = PartnerCheckpoints.Keep(folder, served, id => id == (string)wellKnown["keyId"]! ? publicKey : null, "citya");
        Assert.True(keep.Accepted && keep.Appended, keep.Reason);
        var keyFile = Path.Combine(cities.B.DataPath, "citya.pem");
        File.WriteAllText(keyFile, publicKey);
        var stdout = new StringWriter();
        int code = ExchangeCommands.Run(["verify-audit", "--file", auditPath, "--checkpoint", Path.Combine(folder, PartnerCheckpoints.FileName), "--public-key", keyFile],
            stdout, new StringWriter());
        output.WriteLine(stdout.ToString());
        Assert.True(code == 0, stdout.ToString());
        Assert.Equal(0, ExchangeCommands.Run(["verify-audit", "--file", auditPath, "--checkpoint", checkpointFile, "--public-key", keyFile], new StringWriter(), new StringWriter()));
    }
}
