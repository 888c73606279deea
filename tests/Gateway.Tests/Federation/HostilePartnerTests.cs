using CityGateway.Exchange.Audit;
using System.Text;
using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace CityGateway.Tests.Federation;

/// <summary>
/// A partner city that answers badly, hugely, slowly, endlessly or deceitfully: each answer is
/// refused and counted, the cursor does not move past it, our key never goes to another origin,
/// and the gateway keeps running and ingesting. One gateway pulls from every persona at once.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class HostilePartnerTests(ServicesFixture services, HostilePartnerTests.World world, ITestOutputHelper output)
    : IClassFixture<HostilePartnerTests.World>
{
    public const int MaxPages = 5;
    public const int MaxRows = 50;

    /// <summary>The "huge" persona's server (one per test run of this class).</summary>
    public static RawChunkedServer Flood = null!;

    public sealed class World : IAsyncLifetime
    {
        public FederationWorld Inner { get; } = new();
        public Task InitializeAsync() => Task.CompletedTask;
        public async Task DisposeAsync()
        {
            await Inner.DisposeAsync();
            Flood?.Dispose();
        }
    }

    private Task<FederationWorld> StartAsync() => world.Inner.StartAsync(services, Script,
        "--Gateway:Exchange:Federation:RequestTimeoutSeconds=2",
        "--Gateway:Exchange:Federation:MaxPollSeconds=10",
        "--Gateway:Exchange:Federation:MaxPagesPerPoll=" + MaxPages,
        "--Gateway:Exchange:Federation:MaxRowsPerRelease=" + MaxRows);

    private static readonly string GoodHead = new('a', 64);

    private static void Script(FederationWorld w)
    {
        var city = w.Partner;
        string us = FederationWorld.OurCity;

        // Well behaved, with a member the protocol does not know yet.
        // Well behaved: its feed carries its signed audit checkpoint, and a member the protocol does not know yet.
        var good = city.Add("good", us).WithReleases(1, 2, 3);
        good.FeedExtra["checkpoint"] = good.Sign(AuditCheckpoint.PayloadOf("good", new AuditHead(7, GoodHead), Persona.Base));
        good.FeedExtra["treeSize"] = 3;

        // Good releases, but a checkpoint signed by a key the partner never published.
        var forged = city.Add("forgedcheckpoint", us).WithReleases(1);
        using (var other = ReleaseSigner.Generate())
            forged.FeedExtra["checkpoint"] = forged.Sign(AuditCheckpoint.PayloadOf("forgedcheckpoint", new AuditHead(7, GoodHead), Persona.Base), other);

        city.Add("notjson", us).Feed = (_, _, _) => Task.FromResult(Persona.Raw("<html>502 Bad Gateway</html>", "text/html"));
        city.Add("nullreleases", us).Feed = (_, _, _) => Task.FromResult(Persona.Raw("""{"releases":null,"next":"s0","more":false}"""));
        city.Add("wrongfeedtypes", us).Feed = (_, _, _) => Task.FromResult(Persona.Raw("""{"releases":[1,"two",null],"next":7,"more":"yes"}"""));

        // Release 1 is good; release 2 is signed but its row value is a string: 1 taken, 2 refused.
        var wrongRow = city.Add("wrongrowtype", us).WithReleases(1);
        var badPayload = wrongRow.Payload(2);
        badPayload["rows"]![0]!["value"] = "high";
        wrongRow.Add(wrongRow.Sign(badPayload));

        var y9999 = city.Add("year9999", us);
        var far = y9999.Payload(1);
        far["window"] = new JsonObject { ["start"] = "9999-01-01T00:00:00Z", ["end"] = "9999-01-01T00:15:00Z" };
        y9999.Add(y9999.Sign(far));

        var odd = city.Add("oddwindow", us);
        var oddPayload = odd.Payload(1);
        var start = Persona.Base;
        oddPayload["window"] = new JsonObject { ["start"] = Persona.Utc(start), ["end"] = Persona.Utc(start.AddMinutes(25)) };
        odd.Add(odd.Sign(oddPayload));

        var missing = city.Add("nowindow", us);
        var noWindow = missing.Payload(1);
        noWindow.Remove("window");
        missing.Add(missing.Sign(noWindow));

        var badName = city.Add("badname", us);
        var injected = badName.Payload(1);
        injected["rows"]![0]!["district"] = "harbour,city=evil value=1 0\n";
        badName.Add(badName.Sign(injected));

        var many = city.Add("manyrows", us);
        var big = many.Payload(1);
        var rows = new JsonArray();
        for (int i = 0; i <= MaxRows; i++)
            rows.Add(new JsonObject { ["district"] = "d" + i, ["domain"] = "environment", ["metric"] = "pm25", ["aggregate"] = "mean", ["value"] = i });
        big["rows"] = rows;
        many.Add(many.Sign(big));

        // Hundreds of MB, chunked (no Content-Length), until the client stops reading; served from a
        // raw socket (document and feed on that one origin), where a send fails once the client hangs up.
        var huge = city.Add("huge", us);
        Flood = new RawChunkedServer(() => Persona.Json(huge.Document()));
        huge.ApiBase = Flood.Url + "/huge/api";
        huge.WellKnownUrl = Flood.Url + "/huge/.well-known/city-exchange";

        // A declared length far over the cap: refused on the headers.
        city.Add("declared", us).Feed = async (_, _, http) =>
        {
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = 500_000_000;
            try
            {
                await http.Response.Body.WriteAsync(Encoding.UTF8.GetBytes("""{"releases":["""), http.RequestAborted);
                await Task.Delay(TimeSpan.FromSeconds(20), http.RequestAborted);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                http.Items["aborted"] = e.GetType().Name;
            }
            return Results.Empty;
        };

        // Always one more release, always "more": the page cap ends each poll.
        city.Add("endless", us).Feed = (p, after, _) => Task.FromResult(p.FeedResult([p.Release(after + 1)], "s" + (after + 1), more: true));

        // Releases 1 and 2; asked for what follows 2, it serves 2 again, then 3.
        var replay = city.Add("replay", us).WithReleases(1, 2);
        replay.Feed = (p, after, _) => Task.FromResult(after < 2 ? p.Serve(after, limit: 2)
            : p.FeedResult([p.Releases[1], p.Release(3)], "s3", more: false));

        // After 2 it serves a new release numbered 1 (a different window), then 3.
        var backwards = city.Add("backwards", us).WithReleases(1, 2);
        backwards.Feed = (p, after, _) => Task.FromResult(after < 2 ? p.Serve(after, limit: 2)
            : p.FeedResult([p.Sign(p.Payload(1, value: 99)), p.Release(3)], "s3", more: false));

        // Its "next" claims we are far ahead.
        city.Add("jumpnext", us).WithReleases(1).Feed = (p, after, _) =>
            Task.FromResult(p.FeedResult(p.Releases.Where(r => Persona.Seq(r) > after), "s500", more: false));

        // apiBase on another origin: another port, another host name of the same listener.
        city.Add("otherport", us).WithReleases(1).ApiBase = w.Foreign.Url + "/otherport/api";
        city.Add("otherhost", us).WithReleases(1).ApiBase = $"http://localhost:{city.Port}/otherhost/api";

        // The feed redirects to another origin.
        city.Add("redirect", us).WithReleases(1).Feed = (_, _, _) => Task.FromResult(Results.Redirect(w.Foreign.Url + "/steal", permanent: false));

        // Headers never come within the timeout.
        city.Add("slow", us).WithReleases(1).Feed = async (p, after, http) =>
        {
            try { await Task.Delay(TimeSpan.FromSeconds(30), http.RequestAborted); }
            catch (OperationCanceledException) { http.Items["aborted"] = true; }
            return p.Serve(after);
        };

        // Signing-key rotation, both ways (scripted further by the tests).
        city.Add("rotated", us).WithReleases(1, 2);
        city.Add("norollover", us).WithReleases(1);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long seen;
        while ((seen = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    private async Task AssertRefusedAndHeldAsync(string partner, string reason, long acceptedSequence)
    {
        var w = await StartAsync();
        // Refused, and refused again at a later poll: polling goes on.
        await w.WaitRefusedAsync(partner, reason, times: 2);
        Assert.Equal(acceptedSequence, w.PersistedSequence(partner));
        Assert.Equal(acceptedSequence, w.State.Of(partner)!.LastSequence);
        Assert.False(w.State.Of(partner)!.Ok);
        Assert.Contains(reason, w.State.Of(partner)!.LastError);
        // The cursor the partner sees never went past what was accepted.
        string? expected = acceptedSequence == 0 ? null : "s" + acceptedSequence;
        if (w.Partner.FeedRequests(partner) is { Length: > 0 } requests) Assert.Equal(expected, requests[^1].Since);
        Assert.All(w.Partner.FeedRequests(partner), r => Assert.True(r.Since is null || long.Parse(r.Since[1..]) <= acceptedSequence, r.Since));
        await w.AssertGatewayAliveAsync();
        output.WriteLine($"{partner}: refused {reason} ×{w.State.RefusedCount(partner, reason)}; last error: {w.State.Of(partner)!.LastError}");
    }

    [Fact]
    public async Task A_well_behaved_partner_is_taken_and_unknown_feed_members_are_ignored()
    {
        var w = await StartAsync();
        await w.WaitSequenceAsync("good", 3);
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(w.Database, "partner", "value", "\"city\" = 'good'") == 6,
            TimeSpan.FromSeconds(20), () => "the good partner's 3 × 2 rows are not stored");
        Assert.Equal(0, w.State.RefusedCount("good"));
        Assert.True(w.State.Of("good")!.Ok);
        // Its checkpoint is kept, so its audit log can be held to it later.
        var kept = File.ReadAllLines(Path.Combine(w.FolderOf("good"), "checkpoints.jsonl"));
        Assert.Equal(GoodHead, AuditCheckpoint.Parse(JsonNode.Parse(Assert.Single(kept)), out _)!.Head);
        await w.AssertGatewayAliveAsync();
    }

    [Fact]
    public async Task A_checkpoint_not_signed_by_the_partner_is_refused_and_not_kept()
    {
        var w = await StartAsync();
        await w.WaitSequenceAsync("forgedcheckpoint", 1);
        await w.WaitRefusedAsync("forgedcheckpoint", "checkpoint", times: 1);
        Assert.False(File.Exists(Path.Combine(w.FolderOf("forgedcheckpoint"), "checkpoints.jsonl")), "a forged checkpoint was kept");
        await w.AssertGatewayAliveAsync();
    }

    [Theory]
    [InlineData("notjson", "format", 0)]
    [InlineData("nullreleases", "format", 0)]
    [InlineData("wrongfeedtypes", "format", 0)]
    [InlineData("wrongrowtype", "row", 1)]
    [InlineData("year9999", "window", 0)]
    [InlineData("oddwindow", "window", 0)]
    [InlineData("nowindow", "window", 0)]
    [InlineData("badname", "row", 0)]
    [InlineData("manyrows", "too_many_rows", 0)]
    [InlineData("declared", "too_large", 0)]
    [InlineData("slow", "timeout", 0)]
    public Task A_bad_answer_is_refused_and_the_cursor_stays(string partner, string reason, long acceptedSequence) =>
        AssertRefusedAndHeldAsync(partner, reason, acceptedSequence);

    [Fact]
    public async Task A_body_of_hundreds_of_megabytes_without_length_is_cut_at_the_cap()
    {
        await AssertRefusedAndHeldAsync("huge", "too_large", 0);
        // The partner could push only what fits between the cap and the sockets' buffers, then we hung up.
        Assert.True(Flood.HungUp >= 1, "the client never hung up");
        Assert.InRange(Flood.MaxBytesSent, 4 * 1024 * 1024, 64L * 1024 * 1024);
        output.WriteLine($"huge: {Flood.Floods} floods, the partner sent at most {Flood.MaxBytesSent / (1024 * 1024.0):F1} MiB before we hung up");
    }

    [Fact]
    public async Task A_replayed_or_backwards_release_is_refused_and_nothing_after_it_is_taken()
    {
        await AssertRefusedAndHeldAsync("replay", "replay", 2);
        await AssertRefusedAndHeldAsync("backwards", "out_of_order", 2);
    }

    [Fact]
    public async Task An_endless_more_stops_at_the_page_cap_and_resumes_at_the_next_poll()
    {
        var w = await StartAsync();
        await w.WaitRefusedAsync("endless", "page_cap", times: 2);
        await w.WaitSequenceAsync("endless", 2 * MaxPages);
        // Between two polls (each starts with the well-known document) at most MaxPages feed pages.
        var seen = w.Partner.Seen.Where(s => s.Path.StartsWith("/endless/", StringComparison.Ordinal)).ToArray();
        int pages = 0, maxPages = 0;
        foreach (var s in seen)
        {
            if (s.Path.EndsWith("city-exchange", StringComparison.Ordinal)) pages = 0;
            else maxPages = Math.Max(maxPages, ++pages);
        }
        Assert.Equal(MaxPages, maxPages);
        await w.AssertGatewayAliveAsync();
    }

    [Fact]
    public async Task The_cursor_is_ours_a_next_that_jumps_ahead_is_ignored()
    {
        var w = await StartAsync();
        await w.WaitRefusedAsync("jumpnext", "next_ignored", times: 2);
        var requests = w.Partner.FeedRequests("jumpnext");
        Assert.Null(requests[0].Since);
        Assert.All(requests.Skip(1), r => Assert.Equal("s1", r.Since));
        Assert.Equal(1, w.PersistedSequence("jumpnext"));
        await w.AssertGatewayAliveAsync();
    }

    [Fact]
    public async Task Our_key_never_goes_to_another_origin()
    {
        var w = await StartAsync();
        await w.WaitRefusedAsync("otherport", "origin", times: 2);
        await w.WaitRefusedAsync("otherhost", "origin", times: 2);
        await w.WaitRefusedAsync("redirect", "redirect", times: 2);
        Assert.DoesNotContain(w.Foreign.Seen, s => s.Path.StartsWith("/otherport", StringComparison.Ordinal) || s.Path == "/steal");
        Assert.Empty(w.Partner.FeedRequests("otherhost"));
        Assert.Empty(w.Partner.FeedRequests("otherport"));
        // The redirecting feed got our key (its own origin), the place it pointed at got nothing.
        Assert.NotEmpty(w.Partner.WithKey(FederationWorld.ApiKeyOf("redirect")));
        Assert.All(w.Partner.Seen.Where(s => s.Authorization is not null), s => Assert.StartsWith("127.0.0.1:", s.Host));
        foreach (var p in new[] { "otherport", "otherhost", "redirect" }) Assert.Equal(0, w.PersistedSequence(p));
        await w.AssertGatewayAliveAsync();
    }

    [Fact]
    public async Task A_rotated_key_with_a_rollover_signed_by_the_old_key_is_trusted_and_old_releases_still_verify()
    {
        var w = await StartAsync();
        var p = w.Partner.Personas["rotated"];
        await w.WaitSequenceAsync("rotated", 2);
        var k1 = p.Signer;
        var k2 = ReleaseSigner.Generate();
        // The statement first, then the keys list and the current key: a poll in between never sees an unexplained key.
        p.Extra["rollovers"] = new JsonArray(p.Rollover(k1, k2));
        p.Extra["keys"] = new JsonArray(Persona.KeyEntry(k1, Persona.Base, DateTimeOffset.UtcNow), Persona.KeyEntry(k2, DateTimeOffset.UtcNow, null));
        p.Signer = k2;
        // Release 3 was signed before the rotation, release 4 after.
        p.Add(p.Release(3, k1), p.Release(4, k2));
        await w.WaitSequenceAsync("rotated", 4);
        var trusted = File.ReadAllText(Path.Combine(w.FolderOf("rotated"), PartnerTrustedKeys.FileName));
        Assert.Contains(k1.KeyId, trusted);
        Assert.Contains(k2.KeyId, trusted);
        Assert.Contains("rollover signed by " + k1.KeyId, trusted);
        Assert.Equal(0, w.State.RefusedCount("rotated"));
        await w.AssertGatewayAliveAsync();
    }

    [Fact]
    public async Task A_rotated_key_without_a_valid_rollover_is_refused_until_the_operator_re_pins_it()
    {
        var w = await StartAsync();
        var p = w.Partner.Personas["norollover"];
        await w.WaitSequenceAsync("norollover", 1);
        var k1 = p.Signer;
        var k3 = ReleaseSigner.Generate();
        using var k4 = ReleaseSigner.Generate();
        // One statement signed by the new key itself, one by the old key naming a key id that is not its key's.
        var mismatched = p.Rollover(k1, k3);
        var payload = (JsonObject)mismatched["payload"]!.DeepClone();
        payload["newPublicKey"] = k4.PublicKeyPem;
        p.Extra["rollovers"] = new JsonArray(p.Rollover(k1, k3, signedBy: k3), SignedDocument.Create(payload, k1));
        p.Signer = k3;
        p.Add(p.Release(2, k3));

        await w.WaitRefusedAsync("norollover", "rollover");
        await AssertRefusedAndHeldAsync("norollover", "untrusted_key", 1);
        var trustedFile = Path.Combine(w.FolderOf("norollover"), PartnerTrustedKeys.FileName);
        Assert.DoesNotContain(k3.KeyId, File.ReadAllText(trustedFile));
        Assert.DoesNotContain(k4.KeyId, File.ReadAllText(trustedFile));

        // The operator confirms the new key with the partner and re-pins it; the running gateway takes it.
        var pem = w.Dir.File("norollover-new-key.pem");
        File.WriteAllText(pem, k3.PublicKeyPem);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = ExchangeCommands.Run(["trust-partner-key", "--partner", "norollover", "--public-key", pem, "--data", w.DataPath], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains(k3.KeyId, stdout.ToString());
        await w.WaitSequenceAsync("norollover", 2);
        await w.AssertGatewayAliveAsync();
    }
}
