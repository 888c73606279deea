using System.Text;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Sources;

/// <summary>The MQTT source's connection logic against a fake client: backoff, reconnect, resubscribe,
/// the broker's answers in /readyz, and the journal bound. No broker; time moves when the test says.</summary>
public sealed class MqttSourceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly byte[] Payload = Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":4.5}""");

    private sealed class Rig : IAsyncDisposable
    {
        public FakeMqttConnection Client { get; }
        public TestFrameLog Log { get; }
        public ManualTimeProvider Time { get; } = new();
        public BrokerState Broker { get; } = new();
        public HealthView Health { get; }
        public GatewayMetrics Metrics { get; } = TestMetrics.New();
        public MqttSource Source { get; }
        public ListLogger<MqttSource> Logger { get; } = new();

        public Rig(MqttConnectionOptions? options = null, params TopicRoute[] routes) : this(new FakeMqttConnection(), options, routes)
        {
        }

        public Rig(TestFrameLog log) : this(new FakeMqttConnection(), null, [], log)
        {
        }

        public Rig(FakeMqttConnection client, MqttConnectionOptions? options = null, TopicRoute[]? routes = null, TestFrameLog? log = null)
        {
            Client = client;
            Log = log ?? new TestFrameLog();
            routes ??= [];
            options ??= new MqttConnectionOptions();
            options.ReconnectMinSeconds = 1;
            options.ReconnectMaxSeconds = 8;
            routes = routes.Length > 0 ? routes : [Route("city/json/#"), Route("city/senml/#", 0), Route("v3/+/devices/+/up")];
            Health = new HealthView(Broker, new CityGateway.Storage.Influx.InfluxState());
            Source = new MqttSource(Options.Create(options), new RouteTable(routes, new DecoderCatalog()), Log, Client,
                Options.Create(new PipelineOptions()), Options.Create(new QuarantineOptions()), Metrics, Broker,
                new GatewayClock(Time), Logger, Time);
        }

        public Task StartAsync() => Source.StartAsync(CancellationToken.None);

        public Task UntilAsync(Func<bool> condition, Func<string> describe) => Wait.UntilAsync(condition, Timeout, describe);

        /// <summary>Waits for the source to sleep before its next connect, and ends that sleep.</summary>
        public async Task ElapseBackoffAsync()
        {
            await UntilAsync(() => Time.Pending == 1, () => $"no backoff pending; connects {Client.Connects.Length}, detail {Health.BrokerDetail}");
            Time.FireNext();
        }

        public async ValueTask DisposeAsync()
        {
            await Source.StopAsync(CancellationToken.None);
            Source.Dispose();
        }
    }

    private static TopicRoute Route(string filter, int qos = 1) => new() { Filter = filter, Format = "json", Qos = qos, Source = "mqtt" };

    private static MqttDisconnect BrokerGone => new(MqttDisconnectKind.Transport, 7, "The connection was lost.");

    [Fact]
    public async Task Failed_connects_back_off_exponentially_up_to_the_cap_and_a_loss_starts_again_at_the_minimum()
    {
        await using var rig = new Rig();
        for (int i = 0; i < 5; i++) rig.Client.ConnectResults.Enqueue(MqttConnectResult.Unreachable("Connection refused"));
        await rig.StartAsync();

        for (int i = 0; i < 5; i++)
        {
            await rig.UntilAsync(() => rig.Time.Pending == 1, () => rig.Health.BrokerDetail);
            Assert.Equal("cannot connect to fake-broker:1883: Connection refused", rig.Health.BrokerDetail);
            Assert.False(rig.Health.BrokerConnected);
            rig.Time.FireNext();
        }
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        Assert.Equal([1, 2, 4, 8, 8], rig.Time.Requested.Select(t => t.TotalSeconds));
        Assert.Equal(6, rig.Client.Connects.Length);

        // Connected again after a loss: the first attempt waits the minimum, further failures double from there.
        rig.Client.ConnectResults.Enqueue(MqttConnectResult.Unreachable("Connection refused"));
        rig.Client.Lose(BrokerGone);
        Assert.False(rig.Health.BrokerConnected);
        Assert.Contains("lost: The connection was lost.; reconnecting", rig.Health.BrokerDetail);
        await rig.ElapseBackoffAsync();
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        Assert.Equal([1, 2, 4, 8, 8, 1, 2], rig.Time.Requested.Select(t => t.TotalSeconds));
    }

    [Fact]
    public async Task A_refused_connection_is_reported_and_retried_with_backoff()
    {
        await using var rig = new Rig();
        rig.Client.ConnectResults.Enqueue(MqttConnectResult.Refused(135, "Not authorized"));
        rig.Client.ConnectResults.Enqueue(MqttConnectResult.Refused(135, "Not authorized"));
        await rig.StartAsync();

        await rig.UntilAsync(() => rig.Time.Pending == 1, () => rig.Health.BrokerDetail);
        Assert.Equal("connection refused by fake-broker:1883: Not authorized; retrying", rig.Health.BrokerDetail);
        Assert.False(rig.Health.BrokerConnected);
        rig.Time.FireNext();
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        Assert.Equal([1, 2], rig.Time.Requested.Select(t => t.TotalSeconds));
    }

    [Fact]
    public async Task A_broker_that_refuses_MQTT_5_is_asked_again_at_once_with_3_1_1()
    {
        await using var rig = new Rig();
        rig.Client.ConnectResults.Enqueue(MqttConnectResult.Refused(132, "Unsupported protocol version"));
        await rig.StartAsync();

        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        Assert.Equal([MqttProtocol.V5, MqttProtocol.V311], rig.Client.Connects);
        Assert.Empty(rig.Time.Requested);
        Assert.Equal("connected to fake-broker:1883 (MQTT 3.1.1)", rig.Health.BrokerDetail);
    }

    [Fact]
    public async Task Every_filter_is_subscribed_again_after_each_reconnect()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Client.Subscribes.Length == 1, () => "no subscribe");

        rig.Client.Lose(BrokerGone);
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Client.Subscribes.Length == 2, () => "no resubscribe after the broker went away");

        // A broker restarted without persistence says "no session"; one that kept it says so: both are renewed.
        rig.Client.ConnectResults.Enqueue(MqttConnectResult.Accepted(sessionPresent: false));
        rig.Client.Lose(new MqttDisconnect(MqttDisconnectKind.ByBroker, 0x8E, "Session taken over"));
        Assert.StartsWith("session taken over at fake-broker:1883", rig.Health.BrokerDetail);
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Client.Subscribes.Length == 3, () => "no resubscribe after the session was taken over");

        MqttSubscription[] all = [new("city/json/#", 1), new("city/senml/#", 0), new("v3/+/devices/+/up", 1)];
        Assert.All(rig.Client.Subscribes, s => Assert.Equal(all, s));
        await rig.UntilAsync(() => rig.Health.Subscriptions.All(s => s.State == "granted"), () => "subscriptions not granted");
        Assert.Equal(all.Select(s => (s.Filter, s.Qos, (int?)s.Qos)), rig.Health.Subscriptions.Select(s => (s.Filter, s.Qos, s.GrantedQos)));
        Assert.True(rig.Health.BrokerConnected);
    }

    [Fact]
    public async Task Refused_and_downgraded_subscriptions_are_shown_as_the_broker_answered()
    {
        await using var rig = new Rig();
        rig.Client.Answer = s => s.Filter switch
        {
            "city/senml/#" => MqttSubscribeResult.Refuse(s.Filter, 0x87, "Not authorized"),
            "v3/+/devices/+/up" => MqttSubscribeResult.Grant(s.Filter, 0),
            _ => MqttSubscribeResult.Grant(s.Filter, s.Qos),
        };
        await rig.StartAsync();

        await rig.UntilAsync(() => rig.Health.Subscriptions.Length == 3 && rig.Health.Subscriptions.All(s => s.State != "pending"),
            () => string.Join(", ", rig.Health.Subscriptions.Select(s => s.State)));
        var subs = rig.Health.Subscriptions;
        Assert.Equal(("granted", (int?)1), (subs[0].State, subs[0].GrantedQos));
        Assert.True(subs[1].Refused);
        Assert.Equal("Not authorized (code 135)", subs[1].Reason);
        Assert.Equal(("granted", (int?)0), (subs[2].State, subs[2].GrantedQos));

        // The next connection asks again, and the broker's new answer replaces the old one.
        rig.Client.Answer = s => MqttSubscribeResult.Grant(s.Filter, s.Qos);
        rig.Client.Lose(BrokerGone);
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Client.Subscribes.Length == 2 && rig.Health.Subscriptions.All(s => s.State == "granted"),
            () => string.Join(", ", rig.Health.Subscriptions.Select(s => s.State)));
    }

    [Fact]
    public async Task Intake_pauses_at_the_journal_bound_and_resumes_below_it()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 1, () => rig.Health.BrokerDetail);
        rig.Client.Deliver("city/json/env-0001", Payload);

        // At the bound a QoS 1 message is not appended and not acknowledged: the broker keeps it.
        rig.Log.Fill();
        rig.Client.Deliver("city/json/env-0002", Payload, packetId: 2);
        await rig.UntilAsync(() => rig.Health.BrokerDetail.StartsWith("paused"), () => rig.Health.BrokerDetail);
        Assert.Equal("paused: the journal is at its size bound (100 of 100 bytes)", rig.Health.BrokerDetail);
        Assert.False(rig.Health.BrokerConnected);
        Assert.Equal(1, rig.Client.Disconnects);
        // One already on its way when the bound was hit is held the same way.
        rig.Client.Deliver("city/json/env-0003", Payload, packetId: 3);
        Assert.Single(rig.Client.Connects);
        Assert.Equal(["city/json/env-0001"], rig.Log.Frames.Select(f => f.Topic));
        Assert.Equal([1], rig.Client.Acks);

        rig.Log.MakeRoom();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 2, () => rig.Health.BrokerDetail);
        Assert.Equal(2, rig.Client.Connects.Length);
        Assert.Empty(rig.Time.Requested); // resuming is not a failure: no backoff
        Assert.Contains(rig.Logger.Entries, e => e.EventId == 1012 && e.Message.Contains("2 messages that arrived at the bound"));
        // The broker delivers the two again (DUP set): now they go in, and are acknowledged.
        rig.Client.Deliver("city/json/env-0002", Payload, packetId: 2, duplicate: true);
        rig.Client.Deliver("city/json/env-0003", Payload, packetId: 3, duplicate: true);
        Assert.Equal(["city/json/env-0001", "city/json/env-0002", "city/json/env-0003"], rig.Log.Frames.Select(f => f.Topic));
        await rig.UntilAsync(() => rig.Client.Acks.Length == 3, () => $"acknowledged {string.Join(",", rig.Client.Acks)}");
        Assert.Equal([1, 2, 3], rig.Client.Acks);
        Assert.Equal(3, rig.Metrics.Received);

        // And it pauses again at the next crossing, also when the journal filled from another source.
        rig.Log.Fill();
        rig.Client.Deliver("city/json/env-0004", Payload, packetId: 4);
        await rig.UntilAsync(() => rig.Client.Disconnects == 2 && rig.Health.BrokerDetail.StartsWith("paused"), () => rig.Health.BrokerDetail);
        Assert.Equal(3, rig.Log.Frames.Length);
    }

    [Fact]
    public async Task With_a_clean_session_a_message_at_the_bound_still_goes_in_since_the_broker_would_not_keep_it()
    {
        await using var rig = new Rig(new MqttConnectionOptions { CleanSession = true });
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        rig.Log.Fill();
        rig.Client.Deliver("city/json/env-0001", Payload, packetId: 1);
        await rig.UntilAsync(() => rig.Health.BrokerDetail.StartsWith("paused"), () => rig.Health.BrokerDetail);
        Assert.Single(rig.Log.Frames);
        Assert.Equal([1], rig.Client.Acks);
    }

    [Fact]
    public async Task A_message_not_stored_is_not_acknowledged_and_an_oversized_one_is_cut_to_what_the_quarantine_keeps()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        var big = new byte[300 * 1024];
        rig.Client.Deliver("city/json/env-0001", big);
        var frame = Assert.Single(rig.Log.Frames);
        Assert.Equal((4096, big.Length, "mqtt", 1, 1), (frame.Payload.Length, frame.OriginalLength, frame.Source, frame.Qos, frame.DeliveryId));
        await rig.UntilAsync(() => rig.Client.Acks.Length == 1, () => "not acknowledged");
    }

    [Fact]
    public async Task Taking_in_a_message_allocates_only_the_frame_and_its_payload_copy()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        for (int i = 0; i < 1000; i++) rig.Client.Deliver("city/json/env-0001", Payload); // warm up
        const int count = 10_000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++) rig.Client.Deliver("city/json/env-0001", Payload);
        double perMessage = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)count;
        // RawFrame (56 bytes), the byte[] copy (24 + payload, rounded to 8), and the test log's queue slot
        // (16 bytes a frame, in segments): nothing else on the way from the client's callback to the journal.
        int expected = 56 + (24 + Payload.Length + 7) / 8 * 8 + 16;
        Assert.True(perMessage <= expected + 8, $"{perMessage:F1} bytes a message, expected at most {expected}");
    }

    [Fact]
    public async Task With_a_shared_group_each_filter_is_subscribed_in_its_shared_form_and_left_at_shutdown()
    {
        var rig = new Rig(new MqttConnectionOptions { ClientId = "gw-1", SharedGroup = "ingest", LeaveGroupOnShutdown = true },
            Route("city/json/#", 0), Route("city/json/#", 1), Route("v3/+/devices/+/up"));
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.Subscriptions.All(s => s.State == "granted") && rig.Health.Subscriptions.Length == 2,
            () => string.Join(", ", rig.Health.Subscriptions.Select(s => s.Filter + " " + s.State)));
        MqttSubscription[] shared = [new("$share/ingest/city/json/#", 1), new("$share/ingest/v3/+/devices/+/up", 1)];
        Assert.Equal(shared, Assert.Single(rig.Client.Subscribes));
        Assert.Equal(shared.Select(s => s.Filter), rig.Health.Subscriptions.Select(s => s.Filter));

        // Messages carry their real topic, which is what routing matches.
        rig.Client.Deliver("city/json/env-0001", Payload);
        Assert.Equal("city/json/env-0001", Assert.Single(rig.Log.Frames).Topic);

        // Reconnects keep the shared form.
        rig.Client.Lose(BrokerGone);
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Client.Subscribes.Length == 2, () => "no resubscribe");
        Assert.Equal(shared, rig.Client.Subscribes[1]);

        await rig.DisposeAsync();
        Assert.Equal(shared.Select(s => s.Filter), Assert.Single(rig.Client.Unsubscribes));
        Assert.Equal("stopped", rig.Health.BrokerDetail);
    }

    [Fact]
    public async Task Faults_the_client_caught_in_its_callbacks_are_logged_once_each_as_the_count_grows()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);

        rig.Client.LastCallbackFault = "message callback: IOException: disk gone";
        rig.Client.CallbackFaults = 2;
        rig.Client.Deliver("city/json/env-0001", Payload);
        rig.Client.Deliver("city/json/env-0001", Payload);
        var first = Assert.Single(rig.Logger.Entries, e => e.EventId == 1023);
        Assert.Equal(LogLevel.Warning, first.Level);
        Assert.Contains("caught 2 exceptions in its callbacks (2 since start)", first.Message);
        Assert.EndsWith("last: message callback: IOException: disk gone", first.Message);

        // The source's loop looks too, after a loss.
        rig.Client.CallbackFaults = 3;
        rig.Client.Lose(BrokerGone);
        await rig.UntilAsync(() => rig.Logger.Entries.Count(e => e.EventId == 1023) == 2, () => "second fault report missing");
        Assert.Contains("caught 1 exceptions in its callbacks (3 since start)", rig.Logger.Entries.Last(e => e.EventId == 1023).Message);
    }

    [Fact]
    public async Task Nothing_is_acknowledged_before_the_journal_has_synced_it_then_each_once_in_order()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        rig.Log.HoldDurability();
        var expected = new List<int>();
        for (int id = 1; id <= 300; id++)
        {
            // Every tenth message is QoS 0: stored, never acknowledged, never waited for.
            int qos = id % 10 == 0 ? 0 : 1;
            rig.Client.Deliver($"city/json/env-{id:D4}", Payload, qos, packetId: qos == 0 ? 0 : id);
            if (qos == 1) expected.Add(id);
        }
        Assert.Equal(300, rig.Log.Frames.Length);
        // The loop is waiting for the sync of what it holds, and has acknowledged nothing.
        await rig.UntilAsync(() => rig.Log.DurableWaits >= 1 && rig.Source.PendingAcknowledgements == expected.Count,
            () => $"durable waits {rig.Log.DurableWaits}, pending {rig.Source.PendingAcknowledgements}");
        Assert.Empty(rig.Client.Acks);

        rig.Log.ReleaseDurability();
        await rig.UntilAsync(() => rig.Client.Acks.Length >= expected.Count, () => $"{rig.Client.Acks.Length} acknowledged");
        Assert.Equal(expected, rig.Client.Acks);

        // Durable at once from now on: acknowledged as they come, still in order and once.
        for (int id = 301; id <= 350; id++)
        {
            rig.Client.Deliver($"city/json/env-{id:D4}", Payload, packetId: id);
            expected.Add(id);
        }
        await rig.UntilAsync(() => rig.Client.Acks.Length >= expected.Count, () => $"{rig.Client.Acks.Length} acknowledged");
        await rig.UntilAsync(() => rig.Source.PendingAcknowledgements == 0, () => $"pending {rig.Source.PendingAcknowledgements}");
        Assert.Equal(expected, rig.Client.Acks);
    }

    [Fact]
    public async Task Pausing_at_the_journal_bound_acknowledges_what_is_stored_before_disconnecting()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 1, () => rig.Health.BrokerDetail);
        rig.Log.HoldDurability();
        rig.Client.Deliver("city/json/env-0001", Payload, packetId: 1);
        rig.Client.Deliver("city/json/env-0002", Payload, packetId: 2);
        rig.Log.Fill();
        rig.Client.Deliver("city/json/env-0003", Payload, packetId: 3);
        await rig.UntilAsync(() => rig.Log.DurableWaits >= 1, () => "the drain is not waiting for the sync");
        Assert.Empty(rig.Client.Acks);
        rig.Log.ReleaseDurability();
        await rig.UntilAsync(() => rig.Health.BrokerDetail.StartsWith("paused"), () => rig.Health.BrokerDetail);
        Assert.Equal([1, 2], rig.Client.Acks);
        Assert.Equal([2], rig.Client.AcksAtDisconnect);

        rig.Log.MakeRoom();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 2, () => rig.Health.BrokerDetail);
        rig.Client.Deliver("city/json/env-0003", Payload, packetId: 3, duplicate: true);
        await rig.UntilAsync(() => rig.Client.Acks.Length == 3, () => $"{rig.Client.Acks.Length} acknowledged");
        Assert.Equal([1, 2, 3], rig.Client.Acks);
        Assert.Equal(3, rig.Log.Frames.Length);
    }

    [Fact]
    public async Task What_the_broker_delivers_again_after_a_lost_connection_is_acknowledged_and_not_stored_twice()
    {
        await using var rig = new Rig();
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 1, () => rig.Health.BrokerDetail);
        rig.Log.HoldDurability();
        for (int id = 1; id <= 5; id++) rig.Client.Deliver($"city/json/env-{id:D4}", Payload, packetId: id);
        // The connection ends before the sync returns: nothing was acknowledged on it.
        rig.Client.Lose(BrokerGone);
        rig.Log.ReleaseDurability();
        await rig.UntilAsync(() => rig.Client.StaleAcks == 5, () => $"stale acknowledgements {rig.Client.StaleAcks}");
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 2, () => rig.Health.BrokerDetail);

        // The session's unacknowledged messages come again with DUP set; one new message reuses no id.
        for (int id = 1; id <= 5; id++) rig.Client.Deliver($"city/json/env-{id:D4}", Payload, packetId: id, duplicate: true);
        // DUP with an id the journal has, but another payload, is another message: stored.
        rig.Client.Deliver("city/json/env-0001", Encoding.UTF8.GetBytes("""{"device":"env-0001","pm25":9.9}"""), packetId: 6, duplicate: true);
        rig.Client.Deliver("city/json/env-0002", Encoding.UTF8.GetBytes("""{"device":"env-0002","pm25":9.9}"""), packetId: 2, duplicate: true);
        await rig.UntilAsync(() => rig.Client.Acks.Length == 7, () => $"acknowledged {string.Join(",", rig.Client.Acks)}");
        Assert.Equal([1, 2, 3, 4, 5, 6, 2], rig.Client.Acks);
        Assert.Equal(7, rig.Log.Frames.Length);
        Assert.Equal(5, rig.Source.Redelivered);
        Assert.Equal(7, rig.Metrics.Received);

        // A broker that kept no session sends nothing again: a DUP message is then a message of its own.
        rig.Client.SessionPresent = false;
        rig.Client.Lose(BrokerGone);
        await rig.ElapseBackoffAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected && rig.Client.Subscribes.Length == 3, () => rig.Health.BrokerDetail);
        rig.Client.Deliver("city/json/env-0003", Payload, packetId: 3, duplicate: true);
        Assert.Equal(8, rig.Log.Frames.Length);
    }

    [Fact]
    public async Task After_a_restart_a_message_the_previous_run_journaled_is_recognised_when_the_broker_delivers_it_again()
    {
        var log = new TestFrameLog(firstSequence: 43);
        // The previous run journaled packets 7 and 8 (and a QoS 0 message), and was killed before it acknowledged them.
        log.Recovered.Add(new(41, new RawFrame("mqtt", "city/json/env-0007", Payload, 1, 1, Payload.Length) { DeliveryId = 7 }));
        log.Recovered.Add(new(42, new RawFrame("mqtt", "city/json/env-0008", Payload, 2, 1, Payload.Length) { DeliveryId = 8 }));
        await using var rig = new Rig(log);
        await rig.StartAsync();
        await rig.UntilAsync(() => rig.Health.BrokerConnected, () => rig.Health.BrokerDetail);
        Assert.Contains(rig.Logger.Entries, e => e.EventId == 1044 && e.Message.Contains("2 QoS 1/2 messages"));
        rig.Client.Deliver("city/json/env-0007", Payload, packetId: 7, duplicate: true);
        rig.Client.Deliver("city/json/env-0008", Payload, packetId: 8, duplicate: true);
        rig.Client.Deliver("city/json/env-0009", Payload, packetId: 9);
        await rig.UntilAsync(() => rig.Client.Acks.Length == 3, () => $"acknowledged {string.Join(",", rig.Client.Acks)}");
        Assert.Equal([7, 8, 9], rig.Client.Acks);
        Assert.Equal(["city/json/env-0009"], rig.Log.Frames.Select(f => f.Topic));
    }

    [Fact]
    public void The_pending_acknowledgements_are_bounded_and_a_full_structure_holds_the_caller()
    {
        var pending = new PendingAcks(2);
        Assert.True(pending.Add(10, new MqttAck(new object(), 1), CancellationToken.None));
        Assert.True(pending.Add(11, new MqttAck(new object(), 2), CancellationToken.None));
        using (var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
            Assert.False(pending.Add(12, new MqttAck(new object(), 3), giveUp.Token));
        Assert.False(pending.TryTake(9, out _, out _));
        Assert.True(pending.TryTake(10, out long sequence, out var ack));
        Assert.Equal((10, 1), (sequence, ack.PacketId));
        Assert.True(pending.Add(12, new MqttAck(new object(), 3), CancellationToken.None));
        Assert.Equal(12, pending.Newest);
        Assert.Equal(2, pending.Count);
    }
}
