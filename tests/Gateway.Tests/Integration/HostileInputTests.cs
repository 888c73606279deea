using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CityGateway.Quarantine;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Integration;

/// <summary>
/// A seeded corpus of more than a thousand malformed payloads (random bytes, truncated messages, deep
/// nesting, huge numbers and strings, wrong encodings, duplicated keys, SenML base-field conflicts,
/// uplinks with missing sections, ...) interleaved with a valid fleet in all four formats, through the
/// real mosquitto into the gateway as its own process and the real InfluxDB. The gateway never exits,
/// stores every valid message exactly, quarantines every bad one exactly once with a reason, stays
/// ready, and its peak resident memory stays bounded.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class HostileInputTests(ServicesFixture services, ITestOutputHelper output)
{
    private const int Seed = 20261122;
    private const int BadPayloads = 1280;
    private const int MessagesPerDevice = 70;

    // Publishing pace: messages per second, and bytes per second for the multi-megabyte payloads.
    private const double MessagesPerSecond = 1500;
    private const double BytesPerSecond = 64 * 1024 * 1024;

    /// <summary>
    /// Peak RSS bound. Measured (2 cores, Server GC): about 67 MiB when ready, 86 MiB with the valid
    /// traffic alone, 110-113 MiB with the corpus (55 MiB of bad payloads, up to 2 MiB each). Payloads
    /// above Gateway:Pipeline:MaxPayloadBytes are cut to the 4 KiB the quarantine keeps as they arrive,
    /// the JSON reader stops at depth 32, and every queue is bounded, so nothing grows with the input.
    /// The bound leaves room for larger GC budgets on machines with more cores and cache, and fails
    /// when memory grows with the traffic (the corpus retained, or a deep document materialised).
    /// </summary>
    private const double PeakRssLimitMiB = 300;

    [Fact]
    public async Task Hostile_corpus_among_valid_traffic_is_quarantined_exactly_and_memory_stays_bounded()
    {
        var clock = Stopwatch.StartNew();
        using var dir = new TempDir("hostile");
        var now = DateTimeOffset.UtcNow;

        // The valid fleet: 32 devices in all four formats, 70 messages each, stamped over the last minute.
        SimulatorOptions Fleet(int messagesPerDevice) => new()
        {
            BrokerUrl = services.Broker.Url,
            TrafficDevices = 10,
            WaterDevices = 10,
            EnvironmentDevices = 12,
            MessagesPerDevice = messagesPerDevice,
            Seed = Seed,
            CurveTime = new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero),
        };
        var registryPath = dir.File("devices.json");
        var registry = FleetSimulator.BuildRegistry(Fleet(MessagesPerDevice));
        FleetSimulator.WriteRegistry(registry, registryPath);
        var valid = FleetSimulator.Generate(Fleet(MessagesPerDevice), now.AddSeconds(-55), TimeSpan.FromMilliseconds(20)).ToList();
        Assert.Equal(["chirpstack", "json", "senml", "tts"], valid.Select(m => m.Format).Distinct().Order());

        // The bad payloads are built from one message of every device, stamped three minutes earlier than
        // any valid message: should one of them leak a point, it cannot merge into a valid point unseen.
        var templates = FleetSimulator.Generate(Fleet(1), now.AddMinutes(-3), TimeSpan.FromMilliseconds(20)).ToList();
        var corpus = HostileCorpus.Generate(Seed, templates, now, BadPayloads);
        Assert.True(corpus.Count >= 1200);
        Assert.Equal(corpus.Count, corpus.Select(p => p.Topic).Distinct().Count());

        var db = ServicesFixture.NewDatabase("hostile");
        await using var gateway = new GatewayProcess(services.Broker.Url, services.Influx.Url, db, registryPath, dir.Path);
        await gateway.StartAsync();
        double readyRssMiB = gateway.PeakRssMiB;

        // Sample the gateway's memory and watch that it never exits while the traffic flows.
        using var stopSampling = new CancellationTokenSource();
        bool exited = false;
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                gateway.SampleMemory();
                if (!gateway.Running) exited = true;
                try { await Task.Delay(50, stopSampling.Token); } catch (OperationCanceledException) { }
            }
        });

        // Interleave: the valid messages keep their order; bad payloads fall between them at random.
        var rng = new Random(Seed);
        var schedule = new List<(string Topic, byte[] Payload)>(valid.Count + corpus.Count);
        int vi = 0, bi = 0;
        while (vi < valid.Count || bi < corpus.Count)
        {
            bool takeBad = bi < corpus.Count && (vi >= valid.Count || rng.Next(valid.Count - vi + corpus.Count - bi) < corpus.Count - bi);
            if (takeBad) { schedule.Add((corpus[bi].Topic, corpus[bi].Payload)); bi++; }
            else { schedule.Add((valid[vi].Topic, valid[vi].Payload)); vi++; }
        }

        var publishing = Stopwatch.StartNew();
        using (var pub = await Publisher.ConnectAsync(services.Broker.Url))
        {
            double due = 0;
            foreach (var (topic, payload) in schedule)
            {
                var wait = due - publishing.Elapsed.TotalSeconds;
                if (wait > 0.002) await Task.Delay(TimeSpan.FromSeconds(wait));
                pub.Publish(topic, payload);
                due += 1 / MessagesPerSecond + payload.Length / BytesPerSecond;
            }
            await pub.FlushAsync();
        }
        var published = publishing.Elapsed;

        // Everything received and processed, the journal committed: InfluxDB has accepted what was stored.
        long total = schedule.Count;
        JsonElement ready = default;
        await Wait.UntilAsync(async () =>
        {
            if (!gateway.Running) throw new InvalidOperationException("the gateway exited:\n" + gateway.Log);
            (_, ready) = await gateway.ReadyAsync();
            return ready.GetProperty("received").GetInt64() >= total && ready.GetProperty("queueDepth").GetInt64() == 0
                   && ready.GetProperty("quarantined").GetInt64() >= corpus.Count;
        }, TimeSpan.FromSeconds(60), () => $"gateway counters after publishing {total} messages ({corpus.Count} bad): {ready}");

        // Every valid message stored exactly once: seq per measurement, and no extra field anywhere.
        var expectedFields = new Dictionary<string, Dictionary<string, long>>();
        foreach (var m in valid)
        {
            var fields = expectedFields.TryGetValue(m.Domain, out var f) ? f : expectedFields[m.Domain] = [];
            foreach (var source in m.SourceValues.Keys)
            {
                var metric = registry.DeviceTypes[m.DeviceType].Fields[source].Metric!;
                fields[metric] = fields.GetValueOrDefault(metric) + 1;
            }
        }
        var problems = new List<string>();
        var stored = new Dictionary<string, long>();
        foreach (var domain in new[] { "traffic", "water", "environment" })
        {
            long expected = valid.Count(m => m.Domain == domain);
            Assert.Equal(expected, expectedFields[domain]["seq"]);
            await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, domain, "seq") >= expected, TimeSpan.FromSeconds(30),
                () => $"{domain}: {services.Influx.CountAsync(db, domain, "seq").Result} of {expected} valid messages stored");
            stored[domain] = await services.Influx.CountAsync(db, domain, "seq");
            var counts = (await services.Influx.RowsAsync(db, $"SELECT count(*) FROM \"{domain}\""))[0]
                .Where(kv => kv.Key.StartsWith("count_", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key["count_".Length..], kv => kv.Value.GetInt64());
            int before = problems.Count;
            foreach (var metric in expectedFields[domain].Keys.Union(counts.Keys))
            {
                long want = expectedFields[domain].GetValueOrDefault(metric), got = counts.GetValueOrDefault(metric);
                if (want != got) problems.Add($"{domain}.{metric}: {got} values stored, {want} valid ones published");
            }
            if (problems.Count > before)
            {
                // Name the points no valid message explains (InfluxQL cannot OR two time ranges).
                var first = valid.Min(m => m.TimestampNs);
                var last = valid.Max(m => m.TimestampNs);
                var rows = (await services.Influx.RowsAsync(db, $"SELECT * FROM \"{domain}\" WHERE time < {first}"))
                    .Concat(await services.Influx.RowsAsync(db, $"SELECT * FROM \"{domain}\" WHERE time > {last}"));
                foreach (var r in rows.Take(10)) problems.Add($"{domain}: unexpected point {string.Join(" ", r.Select(kv => $"{kv.Key}={kv.Value}"))}");
            }
        }

        // Exactly one quarantine entry per bad payload, with an acceptable reason, and nothing else.
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var entries = File.ReadAllLines(Path.Combine(gateway.Folder, "quarantine.jsonl"))
            .Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<QuarantineEntry>(l, json)!)
            .ToList();
        var byTopic = entries.GroupBy(e => e.Topic ?? "").ToDictionary(g => g.Key, g => g.ToList());
        foreach (var p in corpus)
        {
            if (!byTopic.TryGetValue(p.Topic, out var found))
            {
                problems.Add($"{p}: not quarantined (expected {string.Join(" or ", p.Reasons)})");
                continue;
            }
            if (found.Count != 1)
            {
                problems.Add($"{p}: {found.Count} entries: {string.Join(", ", found.Select(e => $"{e.Reason} ({e.Field})"))}");
                continue;
            }
            var e = found[0];
            if (!p.Reasons.Contains(e.Reason)) problems.Add($"{p}: reason {e.Reason} ({e.Detail}), expected {string.Join(" or ", p.Reasons)}");
            if (string.IsNullOrWhiteSpace(e.Detail)) problems.Add($"{p}: no detail");
            if (e.PayloadBytes != p.Payload.Length) problems.Add($"{p}: payloadBytes {e.PayloadBytes}");
            var kept = e.PayloadEncoding == "base64" ? Convert.FromBase64String(e.Payload ?? "") : Encoding.UTF8.GetBytes(e.Payload ?? "");
            if (!kept.AsSpan().SequenceEqual(p.Payload.AsSpan(0, Math.Min(p.Payload.Length, 4096))))
                problems.Add($"{p}: the stored payload ({kept.Length} bytes, {e.PayloadEncoding ?? "text"}) is not the start of the published one");
        }
        var corpusTopics = corpus.Select(p => p.Topic).ToHashSet();
        foreach (var e in entries.Where(e => !corpusTopics.Contains(e.Topic ?? "")))
            problems.Add($"unexpected entry for {e.Topic}: {e.Reason} ({e.Detail})");
        Assert.True(problems.Count == 0,
            $"{problems.Count} problems with {valid.Count} valid messages, {corpus.Count} bad payloads and {entries.Count} quarantine entries:\n" +
            string.Join("\n", problems.Take(60)));
        Assert.Equal(valid.Count, stored.Values.Sum());
        Assert.Equal(corpus.Count, entries.Count);

        // Still running and ready, with the counters to match.
        var (status, body) = await gateway.ReadyAsync();
        Assert.Equal(200, status);
        Assert.Equal(total, body.GetProperty("received").GetInt64());
        Assert.Equal(corpus.Count, body.GetProperty("quarantined").GetInt64());
        await stopSampling.CancelAsync();
        await sampler;
        gateway.SampleMemory();
        Assert.False(exited, "the gateway process exited during the run:\n" + gateway.Log);
        Assert.True(gateway.Running);

        output.WriteLine($"published {total} messages in {published.TotalSeconds:F1} s: {valid.Count} valid " +
                         $"({string.Join(", ", valid.GroupBy(m => m.Format).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))}), " +
                         $"{corpus.Count} bad ({corpus.Sum(p => (long)p.Payload.Length) / (1024.0 * 1024):F1} MiB)");
        output.WriteLine($"stored: {string.Join(", ", stored.Select(kv => $"{kv.Key} {kv.Value}"))} (= valid messages per domain)");
        output.WriteLine($"quarantined: {entries.Count} ({string.Join(", ", entries.GroupBy(e => e.Reason).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}"))})");
        foreach (var g in corpus.GroupBy(p => p.Category).OrderBy(g => g.Key))
            output.WriteLine($"  {g.Key,-18} {g.Count(),4} payloads, {g.Min(p => p.Payload.Length),7}–{g.Max(p => p.Payload.Length),7} bytes, " +
                             string.Join(" ", HostileCorpus.Formats.Select(f => $"{f} {g.Count(p => p.Format == f)}")));
        output.WriteLine($"gateway peak RSS {gateway.PeakRssMiB:F1} MiB (bound {PeakRssLimitMiB} MiB; {readyRssMiB:F1} MiB when it became ready); " +
                         $"test took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(gateway.PeakRssMiB < PeakRssLimitMiB, $"peak RSS {gateway.PeakRssMiB:F1} MiB exceeds {PeakRssLimitMiB} MiB");
    }
}
