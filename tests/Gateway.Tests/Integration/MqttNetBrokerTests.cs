using System.Diagnostics;
using System.Text;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;
using CityGateway.Tests.Infrastructure;
using CityGateway.Tests.Sources;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace CityGateway.Tests.Integration;

/// <summary>
/// The MQTT source on MQTTnet against a real mosquitto: QoS 1 at full speed with the 256 KiB socket
/// buffers, and acknowledgements that wait for the journal's sync, seen from the broker: a session
/// taken over by another client receives again exactly the messages the gateway has not acknowledged.
/// </summary>
public sealed class MqttNetBrokerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private sealed class Rig : IAsyncDisposable
    {
        public TestFrameLog Log { get; } = new();
        public BrokerState Broker { get; } = new();
        public MqttNetConnection Connection { get; }
        public MqttSource Source { get; }
        public MqttConnectionOptions Options { get; }

        public Rig(string url, string filter)
        {
            Options = new MqttConnectionOptions
            {
                Url = url, ClientId = "gw-" + Guid.NewGuid().ToString("N")[..8], CleanSession = false, SessionExpirySeconds = 300,
            };
            Connection = new MqttNetConnection(Microsoft.Extensions.Options.Options.Create(Options), new StringPool(4096));
            var routes = new RouteTable([new TopicRoute { Filter = filter, Format = "json", Qos = 1, Source = "mqtt" }], new DecoderCatalog());
            // Time that does not move: after a loss the source waits for a reconnect delay that never ends.
            var time = new ManualTimeProvider();
            Source = new MqttSource(Microsoft.Extensions.Options.Options.Create(Options), routes, Log, Connection,
                Microsoft.Extensions.Options.Options.Create(new PipelineOptions()), Microsoft.Extensions.Options.Options.Create(new QuarantineOptions()),
                TestMetrics.New(), Broker, new GatewayClock(time), new ListLogger<MqttSource>(), time);
        }

        public async Task StartAsync()
        {
            await Source.StartAsync(CancellationToken.None);
            await Wait.UntilAsync(() => Broker.IsConnected && Broker.Subscriptions.All(s => s.State == "granted"), Timeout, () => Broker.Detail);
        }

        public async ValueTask DisposeAsync()
        {
            await Source.StopAsync(CancellationToken.None);
            Source.Dispose();
            Connection.Dispose();
        }
    }

    [Fact]
    public async Task QoS_1_at_full_speed_is_taken_in_without_stalling()
    {
        using var broker = new MosquittoBroker();
        await using var rig = new Rig(broker.Url, "load/#");
        await rig.StartAsync();
        Assert.StartsWith("MQTTnet ", rig.Connection.Implementation);
        using var publisher = await Publisher.ConnectAsync(broker.Url);

        const int count = 50_000;
        var sw = Stopwatch.StartNew();
        var publishing = Task.Run(() =>
        {
            for (int i = 0; i < count; i++)
                publisher.Publish($"load/dev-{i % 200:D3}", $$"""{"device":"dev-{{i % 200:D3}}","seq":{{i}},"pm25":4.5}""");
        });
        // A stall (the symptom of 8 KiB socket buffers) is no progress for a while, not a slow run.
        int seen = 0;
        var lastProgress = sw.Elapsed;
        var longestGap = TimeSpan.Zero;
        while (seen < count)
        {
            await Task.Delay(100);
            int now = rig.Log.Frames.Length;
            if (now > seen)
            {
                if (seen > 0) longestGap = TimeSpan.FromTicks(Math.Max(longestGap.Ticks, (sw.Elapsed - lastProgress).Ticks));
                seen = now;
                lastProgress = sw.Elapsed;
            }
            else if (sw.Elapsed - lastProgress > TimeSpan.FromSeconds(10))
            {
                Assert.Fail($"intake stalled at {seen} of {count} messages for 10 s; detail: {rig.Broker.Detail}");
            }
        }
        var took = sw.Elapsed;
        await publishing;
        await publisher.FlushAsync();
        await Wait.UntilAsync(() => rig.Source.PendingAcknowledgements == 0, Timeout, () => $"pending {rig.Source.PendingAcknowledgements}");
        output.WriteLine($"{count} QoS 1 messages in {took.TotalSeconds:F1} s ({count / took.TotalSeconds:F0} msg/s); longest gap {longestGap.TotalMilliseconds:F0} ms");

        var frames = rig.Log.Frames;
        Assert.Equal(count, frames.Length);
        Assert.Equal(count, frames.Select(f => Encoding.UTF8.GetString(f.Payload)).Distinct().Count());
        Assert.All(frames, f => Assert.Equal(1, f.Qos));
        Assert.True(rig.Broker.IsConnected, rig.Broker.Detail);
    }

    [Fact]
    public async Task A_message_is_not_acknowledged_before_the_journal_has_synced_it()
    {
        using var broker = new MosquittoBroker();
        await using var rig = new Rig(broker.Url, "held/#");
        await rig.StartAsync();
        rig.Log.HoldDurability();
        using var publisher = await Publisher.ConnectAsync(broker.Url);
        var sent = Enumerable.Range(1, 20).Select(i => $$"""{"device":"env-0001","seq":{{i}}}""").ToArray();
        foreach (var p in sent) publisher.Publish("held/env-0001", p);
        await publisher.FlushAsync();
        await Wait.UntilAsync(() => rig.Log.Frames.Length == sent.Length && rig.Source.PendingAcknowledgements == sent.Length, Timeout,
            () => $"{rig.Log.Frames.Length} stored, {rig.Source.PendingAcknowledgements} pending");

        // In the journal but not synced: the broker still holds all of them for the session.
        var received = await TakeOverAsync(rig, broker, publisher);
        Assert.Equal([.. sent, "marker"], received);
    }

    [Fact]
    public async Task Once_the_journal_has_synced_them_every_message_is_acknowledged()
    {
        using var broker = new MosquittoBroker();
        await using var rig = new Rig(broker.Url, "held/#");
        await rig.StartAsync();
        rig.Log.HoldDurability();
        using var publisher = await Publisher.ConnectAsync(broker.Url);
        for (int i = 1; i <= 20; i++) publisher.Publish("held/env-0001", $$"""{"device":"env-0001","seq":{{i}}}""");
        await publisher.FlushAsync();
        await Wait.UntilAsync(() => rig.Log.Frames.Length == 20 && rig.Source.PendingAcknowledgements == 20, Timeout,
            () => $"{rig.Log.Frames.Length} stored, {rig.Source.PendingAcknowledgements} pending");

        rig.Log.ReleaseDurability();
        await Wait.UntilAsync(() => rig.Source.PendingAcknowledgements == 0, Timeout, () => $"pending {rig.Source.PendingAcknowledgements}");
        // The broker has every PUBACK: the session hands nothing again, only what is published next.
        var received = await TakeOverAsync(rig, broker, publisher);
        Assert.Equal(["marker"], received);
        Assert.Equal(20, rig.Log.Frames.Length);
    }

    [Fact]
    public async Task Under_load_no_acknowledgement_leaves_before_the_journal_group_holding_its_message_is_synced()
    {
        using var broker = new MosquittoBroker();
        using var dir = new TempDir("acked-durable");
        long syncs = 0;
        // The real journal with group commit and the real fdatasync, counted.
        using var journal = new FileJournal(new JournalOptions { Path = dir.Path, Fsync = FsyncPolicy.Group },
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, null,
            h => { Interlocked.Increment(ref syncs); SegmentSync.DataSync(h); });
        var options = new MqttConnectionOptions { Url = broker.Url, ClientId = "gw-durable", CleanSession = false, SessionExpirySeconds = 300 };
        using var connection = new CheckedConnection(new MqttNetConnection(Options.Create(options), new StringPool(4096)), journal);
        var routes = new RouteTable([new TopicRoute { Filter = "load/#", Format = "json", Qos = 1, Source = "mqtt" }], new DecoderCatalog());
        var state = new BrokerState();
        var time = new ManualTimeProvider();
        var source = new MqttSource(Options.Create(options), routes, journal, connection, Options.Create(new PipelineOptions()),
            Options.Create(new QuarantineOptions()), TestMetrics.New(), state, new GatewayClock(time), new ListLogger<MqttSource>(), time);
        await source.StartAsync(CancellationToken.None);
        try
        {
            await Wait.UntilAsync(() => state.IsConnected && state.Subscriptions.All(x => x.State == "granted"), Timeout, () => state.Detail);
            using var publisher = await Publisher.ConnectAsync(broker.Url);
            const int count = 30_000;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < count; i++)
                publisher.Publish($"load/dev-{i % 200:D3}", $$"""{"device":"dev-{{i % 200:D3}}","seq":{{i}},"pm25":4.5}""");
            await publisher.FlushAsync();
            await Wait.UntilAsync(() => connection.Acknowledged == count, TimeSpan.FromSeconds(60),
                () => $"{connection.Acknowledged} of {count} acknowledged, {journal.Stats.Appended + 1} appended, pending {source.PendingAcknowledgements}");
            output.WriteLine($"{count} QoS 1 messages acknowledged in {sw.Elapsed.TotalSeconds:F1} s with {syncs} syncs " +
                             $"({count / (double)Math.Max(1, syncs):F0} messages a sync); acknowledged while not durable: {connection.Early}");
            Assert.Equal(0, connection.Early);
            Assert.Equal(count, journal.Stats.Appended + 1);
            // Grouped: far fewer syncs than messages, and the acknowledgements did come.
            Assert.InRange(syncs, 1, count / 10);
        }
        finally
        {
            await source.StopAsync(CancellationToken.None);
            source.Dispose();
        }
    }

    /// <summary>The real connection, watched: each message's journal sequence is noted as it arrives (the
    /// handler appends it next, on this thread; nothing else appends here), and each acknowledgement is checked against what the
    /// journal reports durable at the moment it is sent.</summary>
    private sealed class CheckedConnection(MqttNetConnection inner, FileJournal journal) : IMqttConnection
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<object, long> _sequences = new(ReferenceEqualityComparer.Instance);
        private MqttMessageHandler? _handler;
        private long _acknowledged, _early;

        public long Acknowledged => Interlocked.Read(ref _acknowledged);
        public long Early => Interlocked.Read(ref _early);
        public string Endpoint => inner.Endpoint;
        public string Implementation => inner.Implementation;
        public bool IsConnected => inner.IsConnected;
        public long CallbackFaults => inner.CallbackFaults;
        public string? LastCallbackFault => inner.LastCallbackFault;

        public MqttMessageHandler? MessageReceived
        {
            get => _handler;
            set
            {
                _handler = value;
                inner.MessageReceived = (in MqttIncoming m) =>
                {
                    // Noted before the handler runs: the acknowledging loop may send the PUBACK before it returns.
                    if (m.Ack.Handle is { } h) _sequences[h] = journal.Stats.Appended + 1;
                    _handler?.Invoke(in m);
                };
            }
        }

        public Action<MqttDisconnect>? ConnectionLost { get => inner.ConnectionLost; set => inner.ConnectionLost = value; }
        public Task<MqttConnectResult> ConnectAsync(MqttProtocol protocol, CancellationToken ct) => inner.ConnectAsync(protocol, ct);
        public Task<MqttSubscribeResult[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct) => inner.SubscribeAsync(subscriptions, ct);
        public Task<MqttUnsubscribeResult[]> UnsubscribeAsync(IReadOnlyList<string> filters, CancellationToken ct) => inner.UnsubscribeAsync(filters, ct);
        public Task DisconnectAsync(CancellationToken ct) => inner.DisconnectAsync(ct);

        public async ValueTask<bool> AcknowledgeAsync(MqttAck ack, CancellationToken ct)
        {
            if (!_sequences.TryRemove(ack.Handle!, out long sequence) || journal.DurableSequence < sequence) Interlocked.Increment(ref _early);
            bool sent = await inner.AcknowledgeAsync(ack, ct);
            if (sent) Interlocked.Increment(ref _acknowledged);
            return sent;
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>Connects a second client with the gateway's client id and session: the broker drops the
    /// gateway's connection and resends to the newcomer, first, every message it has no PUBACK for. A
    /// marker published afterwards shows when that is done.</summary>
    private static async Task<string[]> TakeOverAsync(Rig rig, MosquittoBroker broker, Publisher publisher)
    {
        var received = new List<string>();
        using var taker = new MqttNetConnection(Options.Create(new MqttConnectionOptions
        {
            Url = broker.Url, ClientId = rig.Options.ClientId, CleanSession = false, SessionExpirySeconds = 300,
        }), new StringPool(64));
        taker.MessageReceived = (in MqttIncoming m) =>
        {
            lock (received) received.Add(Encoding.UTF8.GetString(m.Payload));
        };
        var result = await taker.ConnectAsync(MqttProtocol.V5, CancellationToken.None);
        Assert.Equal(MqttConnectOutcome.Accepted, result.Outcome);
        Assert.True(result.SessionPresent);
        await Wait.UntilAsync(() => !rig.Broker.IsConnected, Timeout, () => rig.Broker.Detail);
        publisher.Publish("held/marker", "marker");
        await publisher.FlushAsync();
        await Wait.UntilAsync(() => { lock (received) return received.Contains("marker"); }, Timeout,
            () => { lock (received) return $"received {received.Count}: {string.Join(" | ", received)}"; });
        await taker.DisconnectAsync(CancellationToken.None);
        lock (received) return [.. received];
    }
}
