using System.Text;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Audit;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ExchangeTrust;

public sealed class AuditLogTests
{
    private static readonly string Zeros = new('0', 64);

    [Fact]
    public void A_written_log_verifies_and_every_line_has_the_documented_form()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 20);

        var result = AuditLog.Verify(path);
        Assert.True(result.Ok, result.ToString());
        Assert.Equal(20, result.Entries);
        Assert.Null(result.FirstBreak);

        var lines = File.ReadAllLines(path);
        Assert.Equal(20, lines.Length);
        var prev = Zeros;
        for (int i = 0; i < lines.Length; i++)
        {
            var entry = JsonNode.Parse(lines[i])!.AsObject();
            Assert.Equal(new[] { "seq", "time", "kind", "data", "prev", "hash" }, entry.Select(m => m.Key).ToArray());
            Assert.Equal(i + 1, (long)entry["seq"]!);
            Assert.Equal(AuditTestLogs.Start.AddSeconds(i).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"), (string)entry["time"]!);
            Assert.Equal(AuditTestLogs.Entry(i).Kind, (string)entry["kind"]!);
            Assert.Equal(prev, (string)entry["prev"]!);
            Assert.Equal(AuditTestLogs.HashOf(entry), (string)entry["hash"]!);
            Assert.Equal(lines[i] + "\n", Encoding.UTF8.GetString(AuditTestLogs.LineOf(entry)));
            prev = (string)entry["hash"]!;
        }
        Assert.Equal(new AuditHead(20, prev), result.Head);
        Assert.Contains("\"scale\":1e+21", lines[0]); // data in canonical form
    }

    [Fact]
    public void Flipping_any_byte_is_detected_at_its_line()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 20);
        var original = File.ReadAllBytes(path);
        var lineOfByte = new int[original.Length];
        int line = 1;
        for (int i = 0; i < original.Length; i++)
        {
            lineOfByte[i] = line;
            if (original[i] == (byte)'\n') line++;
        }
        var problems = new HashSet<AuditProblem>();

        for (int i = 0; i < original.Length; i++)
        {
            // Every byte with the low bit flipped; every third byte also with the case bit (0x20:
            // 'e' to 'E' in 1e+21 reads as the same number) and the top bit (invalid UTF-8).
            byte[] masks = i % 3 == 0 ? [0x01, 0x20, 0x80] : [0x01];
            foreach (var mask in masks)
            {
                var bytes = (byte[])original.Clone();
                bytes[i] ^= mask;
                var result = AuditLog.Verify(new MemoryStream(bytes));
                Assert.False(result.Ok, $"byte {i} ('{(char)original[i]}') ^ {mask:x2} not detected");
                Assert.Equal(lineOfByte[i], result.FirstBreak!.Line);
                Assert.Equal(lineOfByte[i] - 1, result.Entries);
                problems.Add(result.FirstBreak.Problem);
            }
        }
        // Through the file as well, for a sample.
        var tampered = dir.File("tampered.jsonl");
        for (int i = 0; i < original.Length; i += 97)
        {
            var bytes = (byte[])original.Clone();
            bytes[i] ^= 0x04;
            File.WriteAllBytes(tampered, bytes);
            Assert.Equal(lineOfByte[i], AuditLog.Verify(tampered).FirstBreak?.Line);
        }
        Assert.True(AuditLog.Verify(new MemoryStream(original)).Ok);
        // The flips met every kind of check.
        foreach (var p in new[] { AuditProblem.BadJson, AuditProblem.MalformedEntry, AuditProblem.NotCanonical, AuditProblem.SeqGap,
                     AuditProblem.PrevMismatch, AuditProblem.HashMismatch, AuditProblem.TornLine })
            Assert.Contains(p, problems);
    }

    [Fact]
    public void Deleting_reordering_duplicating_and_truncating_lines_are_detected()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 20);
        var lines = AuditTestLogs.Lines(File.ReadAllBytes(path));
        var tampered = dir.File("tampered.jsonl");

        AuditBreak Check(IEnumerable<byte[]> changed)
        {
            File.WriteAllBytes(tampered, changed.SelectMany(l => l).ToArray());
            var result = AuditLog.Verify(tampered);
            Assert.False(result.Ok);
            return result.FirstBreak!;
        }

        var deleted = Check(lines.Where((_, i) => i != 6));
        Assert.Equal((7L, 8L, AuditProblem.SeqGap), (deleted.Line, deleted.Seq, deleted.Problem));

        var deletedFirst = Check(lines.Skip(1));
        Assert.Equal((1L, AuditProblem.SeqGap), (deletedFirst.Line, deletedFirst.Problem));

        var swapped = lines.ToList();
        (swapped[9], swapped[10]) = (swapped[10], swapped[9]);
        var reordered = Check(swapped);
        Assert.Equal((10L, 11L, AuditProblem.SeqGap), (reordered.Line, reordered.Seq, reordered.Problem));

        var duplicated = lines.ToList();
        duplicated.Insert(5, lines[4]);
        Assert.Equal((6L, AuditProblem.SeqGap), (Check(duplicated).Line, Check(duplicated).Problem));

        var blank = lines.ToList();
        blank.Insert(3, "\n"u8.ToArray());
        Assert.Equal((4L, AuditProblem.BadJson), (Check(blank).Line, Check(blank).Problem));

        // Cut inside the last line, or only its line terminator.
        foreach (var cut in new[] { 1, 2, 10, lines[^1].Length - 1 })
        {
            var truncated = lines.Take(19).Append(lines[^1][..^cut]);
            var torn = Check(truncated);
            Assert.Equal((20L, AuditProblem.TornLine), (torn.Line, torn.Problem));
            Assert.Equal(lines.Take(19).Sum(l => l.Length), torn.Offset);
        }
    }

    [Fact]
    public void Rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link_and_only_an_anchor_catches_a_rewritten_tail()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 20);
        var lines = AuditTestLogs.Lines(File.ReadAllBytes(path));
        var head = AuditLog.Verify(path).Head;
        var tampered = dir.File("tampered.jsonl");

        // Line 10 changed and its hash recomputed: line 10 is consistent, line 11's prev is not.
        var entry = JsonNode.Parse(lines[9])!.AsObject();
        entry["data"]!["note"] = "changed";
        entry["hash"] = AuditTestLogs.HashOf(entry);
        var forged = lines.ToList();
        forged[9] = AuditTestLogs.LineOf(entry);
        File.WriteAllBytes(tampered, forged.SelectMany(l => l).ToArray());
        var result = AuditLog.Verify(tampered);
        Assert.Equal((11L, AuditProblem.PrevMismatch), (result.FirstBreak!.Line, result.FirstBreak.Problem));

        // Whole entries removed from the end leave a shorter valid chain; the anchor (head noted earlier) catches it.
        File.WriteAllBytes(tampered, lines.Take(18).SelectMany(l => l).ToArray());
        Assert.True(AuditLog.Verify(tampered).Ok);
        Assert.Equal(18, AuditLog.Verify(tampered).Head.Seq);
        var shortened = AuditLog.Verify(tampered, head);
        Assert.False(shortened.Ok);
        Assert.Equal(AuditProblem.MissingAnchor, shortened.FirstBreak!.Problem);

        // The whole tail from line 20 rewritten consistently: only the anchor's hash differs.
        var last = JsonNode.Parse(lines[19])!.AsObject();
        last["data"]!["rows"] = 0;
        last["hash"] = AuditTestLogs.HashOf(last);
        File.WriteAllBytes(tampered, lines.Take(19).Append(AuditTestLogs.LineOf(last)).SelectMany(l => l).ToArray());
        Assert.True(AuditLog.Verify(tampered).Ok);
        var rewritten = AuditLog.Verify(tampered, head);
        Assert.Equal((20L, AuditProblem.AnchorMismatch), (rewritten.FirstBreak!.Line, rewritten.FirstBreak.Problem));
        Assert.True(AuditLog.Verify(path, head).Ok);
        Assert.True(AuditLog.Verify(path, new AuditHead(7, JsonNode.Parse(lines[6])!["hash"]!.GetValue<string>())).Ok);
    }

    [Fact]
    public void Reopening_continues_the_chain()
    {
        using var dir = new TempDir("audit");
        var path = dir.File("sub/audit.jsonl"); // the folder is created
        AuditEntry fifth;
        using (var log = new AuditLog(path))
        {
            Assert.Equal(AuditHead.Genesis, log.Head);
            AuditEntry? e = null;
            for (int i = 0; i < 5; i++) e = log.Append("pull", new JsonObject { ["partner"] = "lyon", ["i"] = i });
            fifth = e!;
        }
        using (var log = new AuditLog(path))
        {
            Assert.Equal(new AuditHead(5, fifth.Hash), log.Head);
            var sixth = log.Append("pull", new JsonObject { ["partner"] = "lyon", ["i"] = 5 });
            Assert.Equal(6, sixth.Seq);
            Assert.Equal(fifth.Hash, sixth.Prev);
            for (int i = 6; i < 10; i++) log.Append("pull", new JsonObject { ["partner"] = "lyon", ["i"] = i });
            Assert.Equal(10, log.Head.Seq);
        }
        var result = AuditLog.Verify(path);
        Assert.True(result.Ok, result.ToString());
        Assert.Equal(10, result.Entries);
    }

    [Fact]
    public void Concurrent_appends_from_several_threads_form_one_valid_chain()
    {
        using var dir = new TempDir("audit");
        var path = dir.File("audit.jsonl");
        const int threads = 8, each = 60;
        var returned = new System.Collections.Concurrent.ConcurrentBag<long>();
        using (var log = new AuditLog(path, fsync: false))
        {
            using var start = new Barrier(threads);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < each; i++)
                    returned.Add(log.Append("pull", new JsonObject { ["partner"] = "p" + t, ["i"] = i, ["pad"] = new string('x', 200 + t * 37) }).Seq);
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            Assert.Equal(threads * each, log.Head.Seq);
        }
        var result = AuditLog.Verify(path);
        Assert.True(result.Ok, result.ToString());
        Assert.Equal(threads * each, result.Entries);
        Assert.Equal(Enumerable.Range(1, threads * each).Select(i => (long)i), returned.OrderBy(s => s));
        var seen = File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!["data"]!).Select(d => ((string)d["partner"]!, (int)d["i"]!)).ToHashSet();
        Assert.Equal(threads * each, seen.Count);
        Assert.True(AuditLog.Summarise(path).Partners.All(p => p.Pulls == each));
    }

    [Fact]
    public void A_torn_last_line_is_refused_at_open_until_repaired()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 3);
        var complete = File.ReadAllBytes(path);
        var torn = "{\"seq\":4,\"time\":\"2025-06-01T08:00:03.000Z\",\"kind\":\"rel"u8.ToArray();
        File.WriteAllBytes(path, [.. complete, .. torn]);

        var refused = Assert.Throws<AuditLogException>(() => new AuditLog(path));
        Assert.Equal(AuditProblem.TornLine, refused.Verification!.FirstBreak!.Problem);
        Assert.Equal(4, refused.Verification.FirstBreak.Line);
        Assert.Contains("repair-audit", refused.Message);
        Assert.Equal([.. complete, .. torn], File.ReadAllBytes(path)); // nothing changed by the refusal

        var repair = AuditLog.RepairTornTail(path);
        Assert.True(repair.Repaired, repair.Message);
        Assert.Equal(torn, File.ReadAllBytes(repair.SavedTo!));
        Assert.Equal(complete, File.ReadAllBytes(path));

        using (var log = new AuditLog(path))
            Assert.Equal(4, log.Append("release", new JsonObject { ["partner"] = "lyon", ["rows"] = 1, ["epsilon"] = 0.1 }).Seq);
        Assert.True(AuditLog.Verify(path).Ok);
        Assert.False(AuditLog.RepairTornTail(path).Repaired); // intact: nothing to do
    }

    [Fact]
    public void A_log_broken_elsewhere_is_refused_and_not_repaired()
    {
        using var dir = new TempDir("audit");
        var path = AuditTestLogs.Write(dir.File("audit.jsonl"), 6);
        var bytes = File.ReadAllBytes(path);
        var i = bytes.AsSpan().IndexOf("rel-0003"u8);
        bytes[i + 7] = (byte)'4';
        File.WriteAllBytes(path, bytes);

        var refused = Assert.Throws<AuditLogException>(() => new AuditLog(path));
        Assert.Equal(AuditProblem.HashMismatch, refused.Verification!.FirstBreak!.Problem);
        var repair = AuditLog.RepairTornTail(path);
        Assert.False(repair.Repaired);
        Assert.Null(repair.SavedTo);
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_second_writer_is_refused_while_the_first_is_open()
    {
        using var dir = new TempDir("audit");
        var path = dir.File("audit.jsonl");
        using (var first = new AuditLog(path))
        {
            first.Append("pull", new JsonObject { ["partner"] = "lyon" });
            Assert.Contains("open for writing elsewhere", Assert.Throws<AuditLogException>(() => new AuditLog(path)).Message);
            Assert.Throws<AuditLogException>(() => AuditLog.RepairTornTail(path));
            Assert.True(AuditLog.Verify(path).Ok); // readers are not blocked
        }
        using var second = new AuditLog(path);
        Assert.Equal(2, second.Append("pull", new JsonObject { ["partner"] = "lyon" }).Seq);
    }

    [Fact]
    public void Bad_appends_are_refused_before_anything_is_written()
    {
        using var dir = new TempDir("audit");
        var path = dir.File("audit.jsonl");
        using var log = new AuditLog(path);
        var data = new JsonObject { ["partner"] = "lyon", ["rows"] = 5 };
        var entry = log.Append("release", data);
        data["rows"] = 6; // the entry kept its own copy
        Assert.Equal(5, (int)entry.Data["rows"]!);
        var before = File.ReadAllBytes(path);

        Assert.Throws<ArgumentException>(() => log.Append("", new JsonObject()));
        Assert.Throws<ArgumentException>(() => log.Append("re\nlease", new JsonObject()));
        Assert.Throws<ArgumentException>(() => log.Append("release", new JsonObject { ["epsilon"] = double.NaN }));
        Assert.Throws<ArgumentException>(() => log.Append("release", new JsonObject { ["s"] = "\ud800" }));
        Assert.Throws<ArgumentNullException>(() => log.Append("release", null!));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(1, log.Head.Seq);
        Assert.Equal(2, log.Append("pull", new JsonObject()).Seq);
    }

    [Fact]
    public void Empty_and_missing_files()
    {
        using var dir = new TempDir("audit");
        File.WriteAllBytes(dir.File("empty.jsonl"), []);
        var empty = AuditLog.Verify(dir.File("empty.jsonl"));
        Assert.True(empty.Ok);
        Assert.Equal(0, empty.Entries);
        Assert.Equal(AuditHead.Genesis, empty.Head);

        var missing = AuditLog.Verify(dir.File("missing.jsonl"));
        Assert.False(missing.Ok);
        Assert.Equal(AuditProblem.Unreadable, missing.FirstBreak!.Problem);
    }

    [Fact]
    public void Transparency_summary_sums_per_partner()
    {
        using var dir = new TempDir("audit");
        var path = dir.File("audit.jsonl");
        var clock = new ManualClock(AuditTestLogs.Start);
        using (var log = new AuditLog(path, clock))
        {
            void At(int minutes, string kind, JsonObject data)
            {
                clock.Now = AuditTestLogs.Start.AddMinutes(minutes);
                log.Append(kind, data);
            }
            At(0, "release", new() { ["partner"] = "lyon", ["rows"] = 1200, ["epsilon"] = 0.1 });
            At(1, "pull", new() { ["partner"] = "lyon" });
            At(2, "release", new() { ["partner"] = "ghent", ["rows"] = 40, ["epsilon"] = 0.25 });
            At(3, "release", new() { ["partner"] = "lyon", ["rows"] = 300, ["epsilon"] = 0.2 });
            At(4, "pull", new() { ["partner"] = "lyon" });
            At(5, "pull", new() { ["partner"] = "lyon" });
            At(6, "key-rotation", new() { ["keyId"] = "abc" });
            At(7, "pull", new() { ["partner"] = "ghent" });
            At(8, "release", new() { ["partner"] = "lyon", ["rows"] = 5, ["epsilon"] = 0.7 });
            At(9, "release", new() { ["partner"] = "aarhus" }); // rows and ε missing: counted as 0, warned
        }

        var summary = AuditLog.Summarise(path);
        Assert.True(summary.Verification.Ok);
        Assert.Equal(new[] { "aarhus", "ghent", "lyon" }, summary.Partners.Select(p => p.Partner));
        var lyon = summary.Partners.Single(p => p.Partner == "lyon");
        Assert.Equal((3, 1505L, 1.0m, 3), (lyon.Releases, lyon.RowsReleased, lyon.EpsilonSpent, lyon.Pulls)); // 0.1 + 0.2 + 0.7 exactly
        Assert.Equal(AuditTestLogs.Start, lyon.FirstTime);
        Assert.Equal(AuditTestLogs.Start.AddMinutes(8), lyon.LastTime);
        var ghent = summary.Partners.Single(p => p.Partner == "ghent");
        Assert.Equal((1, 40L, 0.25m, 1), (ghent.Releases, ghent.RowsReleased, ghent.EpsilonSpent, ghent.Pulls));
        Assert.Equal(AuditTestLogs.Start.AddMinutes(7), ghent.LastTime);
        var aarhus = summary.Partners.Single(p => p.Partner == "aarhus");
        Assert.Equal((1, 0L, 0m, 0), (aarhus.Releases, aarhus.RowsReleased, aarhus.EpsilonSpent, aarhus.Pulls));
        Assert.Equal(1, summary.EntriesWithoutPartner);
        Assert.Equal(2, summary.Warnings.Count);
        Assert.All(summary.Warnings, w => Assert.Contains("line 10", w));

        var json = summary.ToJson();
        Assert.Equal(1505, (long)json["partners"]![2]!["rowsReleased"]!);
        Assert.Equal(1.0m, (decimal)json["partners"]![2]!["epsilonSpent"]!);
        Assert.Contains("lyon", summary.ToText());

        // A broken chain: only the entries before the break count, and the summary says so.
        var lines = File.ReadAllLines(path);
        File.WriteAllLines(path, lines.Where((_, i) => i != 4)); // drop the second lyon pull (line 5)
        var partial = AuditLog.Summarise(path);
        Assert.False(partial.Verification.Ok);
        Assert.Equal(4, partial.Verification.Entries);
        var lyonPartial = partial.Partners.Single(p => p.Partner == "lyon");
        Assert.Equal((2, 1500L, 0.3m, 1), (lyonPartial.Releases, lyonPartial.RowsReleased, lyonPartial.EpsilonSpent, lyonPartial.Pulls));
        Assert.DoesNotContain(partial.Partners, p => p.Partner == "aarhus");
        Assert.Contains("BROKEN", partial.ToText());
    }
}
