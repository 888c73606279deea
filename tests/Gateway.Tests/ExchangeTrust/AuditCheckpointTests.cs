using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.ExchangeTrust;

/// <summary>Signed checkpoints of the audit log: issued, kept, and what they catch that the chain alone does not.</summary>
public sealed class AuditCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new("audit-checkpoint");
    private readonly ReleaseSigner _signer = ReleaseSigner.Generate();

    public void Dispose()
    {
        _signer.Dispose();
        _dir.Dispose();
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ExchangeCommands.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private string PublicKeyFile(ReleaseSigner? signer = null)
    {
        var path = _dir.File($"public-{(signer ?? _signer).KeyId}.pem");
        File.WriteAllText(path, (signer ?? _signer).PublicKeyPem);
        return path;
    }

    /// <summary>
    /// A log of <paramref name="count"/> entries with a checkpoint signed after each entry whose
    /// seq is in <paramref name="checkpointAt"/>; returns the log and the checkpoint file.
    /// </summary>
    private (string Log, string Checkpoints) LogWithCheckpoints(int count, params int[] checkpointAt)
    {
        var log = _dir.File("audit.jsonl");
        var clock = new ManualClock(AuditTestLogs.Start);
        using (var audit = new AuditLog(log, clock))
        {
            var checkpoints = new AuditCheckpoints(_dir.File(AuditCheckpoints.FileName), audit, _signer, "citya", time: clock);
            for (int i = 0; i < count; i++)
            {
                var (kind, data) = AuditTestLogs.Entry(i);
                audit.Append(kind, data);
                if (checkpointAt.Contains(i + 1)) Assert.NotNull(checkpoints.Issue());
                clock.Now += TimeSpan.FromSeconds(1);
            }
        }
        return (log, _dir.File(AuditCheckpoints.FileName));
    }

    /// <summary>
    /// What someone with write access to the log can do: change entry <paramref name="seq"/> and
    /// recompute prev and hash of it and of every later entry, as AuditLog does when appending.
    /// </summary>
    private static void EditAndRechain(string path, long seq, Action<JsonObject> edit)
    {
        var entries = File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        edit(entries[(int)seq - 1]["data"]!.AsObject());
        var prev = seq == 1 ? AuditLog.GenesisHash : (string)entries[(int)seq - 2]["hash"]!;
        for (int i = (int)seq - 1; i < entries.Count; i++)
        {
            entries[i]["prev"] = prev;
            entries[i]["hash"] = AuditTestLogs.HashOf(entries[i]);
            prev = (string)entries[i]["hash"]!;
        }
        using var file = File.Create(path);
        foreach (var e in entries) file.Write(AuditTestLogs.LineOf(e));
    }

    [Fact]
    public void A_checkpoint_is_the_signed_head_appended_as_one_line_and_reloaded_on_start()
    {
        var clock = new ManualClock(AuditTestLogs.Start);
        var path = _dir.File(AuditCheckpoints.FileName);
        using var audit = new AuditLog(_dir.File("audit.jsonl"), clock);
        var checkpoints = new AuditCheckpoints(path, audit, _signer, "citya", time: clock);
        Assert.Null(checkpoints.Issue()); // nothing to vouch for in an empty log
        Assert.Null(checkpoints.IssueIfMoved());
        Assert.Null(checkpoints.Latest);
        Assert.False(File.Exists(path));

        for (int i = 0; i < 3; i++) audit.Append("pull", new JsonObject { ["partner"] = "cityb", ["i"] = i });
        clock.Now = AuditTestLogs.Start.AddMilliseconds(1234);
        var first = checkpoints.Issue()!;
        var payload = first["payload"]!.AsObject();
        Assert.Equal(new[] { "type", "city", "seq", "head", "time" }, payload.Select(m => m.Key).ToArray());
        Assert.Equal("audit-checkpoint", (string)payload["type"]!);
        Assert.Equal("citya", (string)payload["city"]!);
        Assert.Equal(3, (long)payload["seq"]!);
        Assert.Equal(audit.Head.Hash, (string)payload["head"]!);
        Assert.Equal("2025-06-01T08:00:01Z", (string)payload["time"]!);
        Assert.True(SignedDocument.VerifyEnvelope(first, _signer.PublicKeyPem, out var error), error);
        Assert.Equal(_signer.KeyId, (string)first["signature"]!["keyId"]!);
        Assert.True(JsonNode.DeepEquals(first, checkpoints.Latest));
        Assert.Equal([first.ToJsonString()], File.ReadAllLines(path));

        // Not moved: nothing new at start-up.
        Assert.True(JsonNode.DeepEquals(first, checkpoints.IssueIfMoved()));
        Assert.Single(File.ReadAllLines(path));

        // A new instance (a restart) holds the last line; when the head moved it signs a new one.
        audit.Append("pull", new JsonObject { ["partner"] = "cityb" });
        var restarted = new AuditCheckpoints(path, audit, _signer, "citya", time: clock);
        Assert.True(JsonNode.DeepEquals(first, restarted.Latest));
        var moved = restarted.IssueIfMoved()!;
        Assert.Equal(4, (long)moved["payload"]!["seq"]!);
        Assert.Equal(2, File.ReadAllLines(path).Length);

        // A torn last line (a crash mid-write) stays where it is; the next checkpoint gets a line of its own.
        File.AppendAllText(path, "{\"payload\":{\"ty");
        audit.Append("pull", new JsonObject { ["partner"] = "cityb" });
        var afterCrash = new AuditCheckpoints(path, audit, _signer, "citya", time: clock);
        Assert.True(JsonNode.DeepEquals(moved, afterCrash.Latest));
        afterCrash.IssueIfMoved();
        var lines = File.ReadAllLines(path);
        Assert.Equal(4, lines.Length);
        Assert.Equal("{\"payload\":{\"ty", lines[2]);
        Assert.Equal(5, (long)JsonNode.Parse(lines[3])!["payload"]!["seq"]!);
    }

    [Fact]
    public void A_log_edited_and_rechained_after_a_checkpoint_passes_alone_but_fails_against_the_checkpoint()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        var key = PublicKeyFile();
        var intact = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", key);
        Assert.True(intact.Code == 0, intact.Out + intact.Err);
        Assert.Contains("1 checked with key " + _signer.KeyId + ", all hold", intact.Out);
        Assert.Contains("seq 8 (citya", intact.Out);

        // Entry 5 "corrected" and every later hash recomputed: the chain alone cannot tell.
        EditAndRechain(log, 5, data => data["bytes"] = 0);
        var alone = Run("verify-audit", "--file", log);
        Assert.Equal(0, alone.Code);
        Assert.Contains("intact, 12 entries", alone.Out);

        var against = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", key);
        Assert.Equal(1, against.Code);
        Assert.Contains("1 FAIL", against.Out);
        Assert.Contains("the log's entry seq 8 has hash", against.Out);
        Assert.Contains("the log was changed after the checkpoint was issued", against.Out);
    }

    [Fact]
    public void At_start_up_the_gateway_reports_a_log_changed_under_its_last_checkpoint()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        EditAndRechain(log, 5, data => data["bytes"] = 0);
        var logger = new ListLogger<AuditCheckpoints>();
        using (var audit = new AuditLog(log)) // the chain verifies, so the gateway opens it
            new AuditCheckpoints(checkpoints, audit, _signer, "citya", logger).IssueIfMoved();
        var error = Assert.Single(logger.Entries, e => e.EventId == 8045);
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("seq 8", error.Message);
        Assert.Equal(2, File.ReadAllLines(checkpoints).Length); // and it signs the head it now has

        File.WriteAllLines(log, File.ReadAllLines(log).Take(6));
        logger = new ListLogger<AuditCheckpoints>();
        using (var audit = new AuditLog(log))
            new AuditCheckpoints(checkpoints, audit, _signer, "citya", logger).IssueIfMoved();
        Assert.Contains(logger.Entries, e => e.EventId == 8044 && e.Message.Contains("ends at seq 6", StringComparison.Ordinal));
    }

    [Fact]
    public void A_change_after_the_checkpointed_entry_is_not_caught_by_that_checkpoint()
    {
        // What a checkpoint does not prove: entries after its seq are covered only by later checkpoints.
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        EditAndRechain(log, 10, data => data["keyId"] = "other");
        Assert.Equal(0, Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", PublicKeyFile()).Code);
    }

    [Fact]
    public void A_log_cut_below_the_checkpoint_fails()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        File.WriteAllLines(log, File.ReadAllLines(log).Take(6));
        Assert.Equal(0, Run("verify-audit", "--file", log).Code);

        var cut = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", PublicKeyFile());
        Assert.Equal(1, cut.Code);
        Assert.Contains("the log ends at seq 6, the checkpoint covers 8", cut.Out);
    }

    [Fact]
    public void A_log_whose_chain_breaks_before_the_checkpoint_fails_with_the_break()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        var lines = File.ReadAllLines(log);
        lines[3] = lines[3].Replace("\"partner\":\"lyon\"", "\"partner\":\"nice\"");
        File.WriteAllLines(log, lines);
        var result = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", PublicKeyFile());
        Assert.Equal(1, result.Code);
        Assert.Contains("BROKEN at line 4", result.Out);
        Assert.Contains("the chain breaks at line 4 before seq 8", result.Out);
    }

    [Fact]
    public void Every_checkpoint_of_a_file_is_checked()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 4, 8, 12);
        var key = PublicKeyFile();
        var all = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", key);
        Assert.Equal(0, all.Code);
        Assert.Contains("3 checked", all.Out);

        EditAndRechain(log, 10, data => data["bytes"] = 0);
        var result = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", key);
        Assert.Equal(1, result.Code);
        Assert.Contains("1 FAIL", result.Out);
        Assert.Contains("line 1: seq 4 (citya", result.Out);
        Assert.Contains("line 3: seq 12 (citya", result.Out);
        var outcomes = result.Out.Split('\n').Where(l => l.TrimStart().StartsWith("line ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, outcomes.Count);
        Assert.Contains(": ok: ", outcomes[0]);
        Assert.Contains(": ok: ", outcomes[1]);
        Assert.Contains(": FAILS: the log's entry seq 12 has hash", outcomes[2]);
    }

    [Fact]
    public void A_checkpoint_saved_as_served_indented_is_read_as_one()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        var saved = _dir.File("checkpoint.json");
        var served = JsonNode.Parse(File.ReadAllLines(checkpoints).Single())!;
        File.WriteAllText(saved, served.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var result = Run("verify-audit", "--file", log, "--checkpoint", saved, "--public-key", PublicKeyFile());
        Assert.True(result.Code == 0, result.Out);
        Assert.Contains("1 checked", result.Out);
    }

    [Fact]
    public void A_checkpoint_with_a_bad_signature_an_other_key_or_no_signature_fails()
    {
        var (log, checkpoints) = LogWithCheckpoints(12, 8);
        var good = JsonNode.Parse(File.ReadAllLines(checkpoints).Single())!.AsObject();
        var key = PublicKeyFile();

        JsonObject Altered(Action<JsonObject> change)
        {
            var copy = good.DeepClone().AsObject();
            change(copy);
            return copy;
        }
        var value = (string)good["signature"]!["value"]!;
        using var stranger = ReleaseSigner.Generate();
        var cases = new (string Name, JsonObject Envelope, string Expected)[]
        {
            ("flipped signature", Altered(c => c["signature"]!["value"] = (value[0] == 'A' ? "B" : "A") + value[1..]), "the signature does not verify"),
            ("payload changed after signing", Altered(c => c["payload"]!["seq"] = 6), "the signature does not match the payload"),
            ("signed by another key", SignedDocument.Create(good["payload"]!.AsObject(), stranger), "signed with key " + stranger.KeyId),
            ("unsigned", Altered(c => c.Remove("signature")), "not signed"),
            ("not a checkpoint", SignedDocument.Create(new JsonObject { ["type"] = "release", ["seq"] = 8 }, _signer), "payload"),
        };
        foreach (var (name, envelope, expected) in cases)
        {
            var file = _dir.File(name.Replace(' ', '-') + ".jsonl");
            File.WriteAllText(file, envelope.ToJsonString() + "\n");
            var result = Run("verify-audit", "--file", log, "--checkpoint", file, "--public-key", key);
            Assert.True(result.Code == 1, $"{name}: exit {result.Code}\n{result.Out}{result.Err}");
            Assert.Contains("FAILS", result.Out);
            Assert.Contains(expected, result.Out);
        }
        // The good checkpoint against the stranger's key fails too.
        Assert.Equal(1, Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", PublicKeyFile(stranger)).Code);

        // A file with a line that is not JSON among good ones: the good one holds, the file fails.
        var mixed = _dir.File("mixed.jsonl");
        File.WriteAllText(mixed, good.ToJsonString() + "\n{not json\n");
        var m = Run("verify-audit", "--file", log, "--checkpoint", mixed, "--public-key", key);
        Assert.Equal(1, m.Code);
        Assert.Contains("line 2: not a checkpoint: FAILS: not JSON", m.Out);
        var empty = _dir.File("empty.jsonl");
        File.WriteAllText(empty, "");
        var none = Run("verify-audit", "--file", log, "--checkpoint", empty, "--public-key", key);
        Assert.Equal(1, none.Code);
        Assert.Contains("holds no checkpoint", none.Out);
    }

    [Fact]
    public void Checkpoint_options_are_refused_with_exit_2_when_incomplete_or_unreadable()
    {
        var (log, checkpoints) = LogWithCheckpoints(4, 4);
        var key = PublicKeyFile();

        var noKey = Run("verify-audit", "--file", log, "--checkpoint", checkpoints);
        Assert.Equal(2, noKey.Code);
        Assert.Contains("--checkpoint needs --public-key", noKey.Err);
        var noCheckpoint = Run("verify-audit", "--file", log, "--public-key", key);
        Assert.Equal(2, noCheckpoint.Code);
        Assert.Contains("--public-key is used only with --checkpoint", noCheckpoint.Err);
        Assert.Equal(2, Run("verify-audit", "--file", log, "--checkpoint", _dir.File("absent.jsonl"), "--public-key", key).Code);
        Assert.Equal(2, Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", _dir.File("absent.pem")).Code);
        Assert.Equal(2, Run("verify-audit", "--file", _dir.File("absent.jsonl"), "--checkpoint", checkpoints, "--public-key", key).Code);
        var privateKey = _dir.File("private.pem");
        File.WriteAllText(privateKey, _signer.ExportPkcs8PrivateKeyPem());
        var notPublic = Run("verify-audit", "--file", log, "--checkpoint", checkpoints, "--public-key", privateKey);
        Assert.Equal(2, notPublic.Code);
        Assert.Contains("is not a P-256 \"PUBLIC KEY\" PEM", notPublic.Err);

        var help = Run("verify-audit", "--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("--checkpoint <FILE>", help.Out);
        Assert.Contains("--public-key <PEM>", help.Out);
        Assert.Contains("Exit codes: 0 intact, 1 broken, 2 wrong arguments", help.Out);
    }

    [Fact]
    public void The_start_of_the_exchange_signs_a_checkpoint_when_the_log_moved_since_the_last()
    {
        Directory.CreateDirectory(_dir.File("agreements"));
        File.WriteAllText(_dir.File("city-key.pem"), _signer.ExportPkcs8PrivateKeyPem());
        var options = Options.Create(new ExchangeOptions
        {
            Enabled = true, CityId = "citya", AgreementsPath = _dir.File("agreements"), DataPath = _dir.File("exchange"),
            Signing = new ExchangeSigningOptions { KeyFile = _dir.File("city-key.pem") },
        });
        var file = Path.Combine(_dir.File("exchange"), AuditCheckpoints.FileName);

        var first = new ExchangeContext(options);
        Assert.Null(first.Checkpoints.Latest); // an empty log: nothing to sign
        first.Audit.Append("pull", new JsonObject { ["partner"] = "cityb" });
        first.Dispose();

        var second = new ExchangeContext(options);
        var latest = second.Checkpoints.Latest!;
        Assert.Equal(1, (long)latest["payload"]!["seq"]!);
        Assert.Equal(second.Audit.Head.Hash, (string)latest["payload"]!["head"]!);
        Assert.True(SignedDocument.VerifyEnvelope(latest, _signer.PublicKeyPem, out _));
        second.Dispose();

        var third = new ExchangeContext(options); // nothing moved
        Assert.True(JsonNode.DeepEquals(latest, third.Checkpoints.Latest));
        Assert.Single(File.ReadAllLines(file));
        third.Dispose();
    }

    [Fact]
    public void The_partner_api_description_documents_the_checkpoint()
    {
        var doc = JsonNode.Parse(OpenApiDocument.Json)!;
        Assert.NotNull(doc["paths"]!["/api/exchange/v1/checkpoint"]!["get"]);
        Assert.NotNull(doc["components"]!["schemas"]!["Feed"]!["properties"]!["checkpoint"]);
        Assert.Equal(new[] { "type", "city", "seq", "head", "time" },
            doc["components"]!["schemas"]!["Checkpoint"]!["properties"]!["payload"]!["required"]!.AsArray().Select(n => (string)n!).ToArray());
    }
}
