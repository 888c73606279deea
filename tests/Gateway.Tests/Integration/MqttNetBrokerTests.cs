using System.Diagnostics;
using System.Text;
using CityGateway.Core;
using CityGateway.Decoding;
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
