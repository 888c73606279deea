using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ExchangeTrust;

/// <summary>The federation side: keeping the checkpoints a partner serves, and refusing one that goes back.</summary>
public sealed class PartnerCheckpointsTests : IDisposable
{
    private readonly TempDir _dir = new("partner-checkpoints");
    private readonly ReleaseSigner _partner = ReleaseSigner.Generate();
    private string Folder => _dir.File("partners/cityb");
    private string Kept => Path.Combine(Folder, PartnerCheckpoints.FileName);

    public void Dispose()
    {
        _partner.Dispose();
        _dir.Dispose();
    }

    private string? Trusted(string keyId) => keyId == _partner.KeyId ? _partner.PublicKeyPem : null;

    private JsonObject Checkpoint(long seq, char head, ReleaseSigner? signer = null, string city = "cityb") =>
        SignedDocument.Create(AuditCheckpoint.PayloadOf(city, new AuditHead(seq, new string(head, 64)), AuditTestLogs.Start.AddMinutes(seq)), signer ?? _partner);

    [Fact]
    public void New_checkpoints_are_appended_once_each_in_order()
    {
        var four = PartnerCheckpoints.Keep(Folder, Checkpoint(4, 'a'), Trusted, "cityb");
        Assert.True(four.Accepted && four.Appended, four.Reason);
        var again = PartnerCheckpoints.Keep(Folder, Checkpoint(4, 'a'), Trusted, "cityb");
        Assert.True(again.Accepted, again.Reason);
        Assert.False(again.Appended);
        var eight = PartnerCheckpoints.Keep(Folder, Checkpoint(8, 'b'), Trusted, "cityb");
        Assert.True(eight.Accepted && eight.Appended, eight.Reason);

        var lines = File.ReadAllLines(Kept);
        Assert.Equal(2, lines.Length);
        Assert.Equal(new long[] { 4, 8 }, lines.Select(l => AuditCheckpoint.Parse(JsonNode.Parse(l), out _)!.Seq).ToArray());
        Assert.Equal(8, PartnerCheckpoints.LastKept(Folder)!.Seq);
    }

    [Fact]
    public void A_checkpoint_that_goes_back_or_forks_is_refused_and_not_kept()
    {
        Assert.True(PartnerCheckpoints.Keep(Folder, Checkpoint(8, 'b'), Trusted).Appended);
        var before = File.ReadAllText(Kept);

        // A city that rewrote its log after serving seq 8 and now serves a shorter one, properly signed.
        var rollback = PartnerCheckpoints.Keep(Folder, Checkpoint(6, 'c'), Trusted);
        Assert.False(rollback.Accepted);
        Assert.Contains("goes back: seq 6, but seq 8 was kept before", rollback.Reason);
        // Even a lower one it served before is not taken again as the latest.
        Assert.False(PartnerCheckpoints.Keep(Folder, Checkpoint(4, 'a'), Trusted).Accepted);
        var fork = PartnerCheckpoints.Keep(Folder, Checkpoint(8, 'd'), Trusted);
        Assert.False(fork.Accepted);
        Assert.Contains("forked", fork.Reason);

        Assert.Equal(before, File.ReadAllText(Kept));
        Assert.Equal('b', PartnerCheckpoints.LastKept(Folder)!.Head[0]);
    }

    [Fact]
    public void An_unsigned_invalid_untrusted_or_foreign_checkpoint_is_refused()
    {
        using var stranger = ReleaseSigner.Generate();
        var tampered = Checkpoint(5, 'a');
        tampered["payload"]!["seq"] = 50;
        var unsigned = Checkpoint(5, 'a');
        unsigned.Remove("signature");
        var notCheckpoint = SignedDocument.Create(new JsonObject { ["type"] = "release", ["sequence"] = 5 }, _partner);

        var cases = new (JsonObject? Checkpoint, string Expected)[]
        {
            (null, "served no checkpoint"),
            (unsigned, "not signed"),
            (tampered, "signature does not verify"),
            (Checkpoint(5, 'a', stranger), "not trusted"),
            (notCheckpoint, "not a valid checkpoint"),
            (Checkpoint(5, 'a', city: "citya"), "of city \"citya\""),
        };
        foreach (var (checkpoint, expected) in cases)
        {
            var result = PartnerCheckpoints.Keep(Folder, checkpoint, Trusted, "cityb");
            Assert.False(result.Accepted, expected);
            Assert.Contains(expected, result.Reason);
        }
        Assert.False(File.Exists(Kept));
    }

    [Fact]
    public void A_torn_last_line_is_left_alone_and_the_checkpoint_before_it_counts()
    {
        Assert.True(PartnerCheckpoints.Keep(Folder, Checkpoint(8, 'b'), Trusted).Appended);
        File.AppendAllText(Kept, "{\"payload\":{\"type\":\"audit-chec");
        Assert.Equal(8, PartnerCheckpoints.LastKept(Folder)!.Seq);
        Assert.False(PartnerCheckpoints.Keep(Folder, Checkpoint(7, 'c'), Trusted).Accepted);
        Assert.True(PartnerCheckpoints.Keep(Folder, Checkpoint(9, 'c'), Trusted).Appended);

        var lines = File.ReadAllLines(Kept);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("{\"payload\":{\"type\":\"audit-chec", lines[1]);
        Assert.Equal(9, PartnerCheckpoints.LastKept(Folder)!.Seq);
    }

    [Fact]
    public void Kept_checkpoints_verify_the_partners_log()
    {
        // The partner's own side, for the round trip: a log, its gateway's checkpoints, kept here.
        var clock = new ManualClock(AuditTestLogs.Start);
        var log = _dir.File("cityb-audit.jsonl");
        using (var audit = new AuditLog(log, clock))
        {
            var issuer = new AuditCheckpoints(_dir.File("cityb-" + AuditCheckpoints.FileName), audit, _partner, "cityb", time: clock);
            for (int i = 0; i < 9; i++)
            {
                var (kind, data) = AuditTestLogs.Entry(i);
                audit.Append(kind, data);
                if (i % 3 == 2) Assert.True(PartnerCheckpoints.Keep(Folder, issuer.Issue(), Trusted, "cityb").Appended);
            }
        }
        var key = _dir.File("cityb.pem");
        File.WriteAllText(key, _partner.PublicKeyPem);
        var output = new StringWriter();
        int code = ExchangeCommands.Run(["verify-audit", "--file", log, "--checkpoint", Kept, "--public-key", key], output, new StringWriter());
        Assert.True(code == 0, output.ToString());
        Assert.Contains("3 checked", output.ToString());
    }
}
