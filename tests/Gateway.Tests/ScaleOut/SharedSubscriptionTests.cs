using System.Diagnostics;
using CityGateway.Sources.Mqtt;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.ScaleOut;

/// <summary>
/// Scale-out: three gateway processes share one broker's load through an MQTT 5 shared subscription
/// ($share/{group}/scale/+) and write to one InfluxDB database. Every message is numbered and carries
/// no device time, so a message stored twice would be two rows and one never stored a missing number.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class SharedSubscriptionTests(ServicesFixture services, ITestOutputHelper output)
{
    private const int Messages = 30_000;
    private const int Rate = 3_000;

    [Fact]
    public async Task Three_instances_split_the_messages_and_each_message_is_stored_once()
    {
        using var broker = new MosquittoBroker();
        await using var cluster = await ScaleOutCluster.StartAsync(broker, services.Influx, instances: 3);

        // Each instance says which group it is in, and the broker granted the shared form of the route's filter.
        foreach (var g in cluster.Instances)
        {
            var body = await ScaleOutCluster.ReadyBodyAsync(g);
            var mqtt = body.GetProperty("broker");
            Assert.Equal(cluster.Group, mqtt.GetProperty("sharedGroup").GetString());
            var subscription = mqtt.GetProperty("subscriptions").EnumerateArray()
                .Single(s => s.GetProperty("filter").GetString() == $"$share/{cluster.Group}/scale/+");
            Assert.Equal("granted", subscription.GetProperty("state").GetString());
            // Instances on one host are told apart by their client id.
            Assert.Equal(mqtt.GetProperty("clientId").GetString(), body.GetProperty("instance").GetString());
        }

        var sw = Stopwatch.StartNew();
        await cluster.PublishAsync(Messages, Rate);
        double publishSeconds = sw.Elapsed.TotalSeconds;
        var (points, distinct) = await cluster.WaitUntilStoredAsync(Messages, TimeSpan.FromSeconds(45));
        double storedSeconds = sw.Elapsed.TotalSeconds;
        var received = await cluster.ReceivedAsync();
        output.WriteLine($"{Messages} messages published in {publishSeconds:F1} s, all stored after {storedSeconds:F1} s");
        output.WriteLine($"received per instance: {string.Join(", ", received)} (sum {received.Sum()})");
        output.WriteLine($"stored {points} points, {distinct} distinct sequence numbers");

        Assert.All(received, r => Assert.True(r > 0, $"an instance received nothing: {string.Join(", ", received)}"));
        // The broker handed each message to exactly one member of the group.
        Assert.Equal(Messages, received.Sum());
        Assert.Equal(Messages, points);
        Assert.Equal(Messages, distinct);

        // Each instance's counters are a series of their own in measurement "gateway" (tag instance).
        var instances = new List<string>();
        foreach (var g in cluster.Instances) instances.Add((await ScaleOutCluster.ReadyBodyAsync(g)).GetProperty("instance").GetString()!);
        Dictionary<string, long> selfReported = [];
        await Wait.UntilAsync(async () =>
        {
            var rows = await services.Influx.RowsAsync(cluster.Database, "SELECT last(\"received\") AS r FROM \"gateway\" WHERE \"reason\" = '' GROUP BY \"instance\"");
            selfReported = rows.ToDictionary(r => r["instance"].GetString()!, r => r["r"].GetInt64());
            return instances.All(i => selfReported.GetValueOrDefault(i) > 0) && selfReported.Values.Sum() == Messages;
        }, TimeSpan.FromSeconds(15), () => $"gateway measurement: {string.Join(", ", selfReported.Select(kv => $"{kv.Key}={kv.Value}"))}");
        Assert.Equal(instances.Order(), selfReported.Keys.Order());
    }

    [Fact]
    public async Task A_killed_instance_restarts_and_every_message_is_stored_once()
    {
        // Sizing: while an instance is away, mosquitto keeps handing it its share (rate / instances)
        // and queues that in its session, up to max_queued_messages; the rest would be dropped. Here
        // 1,000 msg/s for a few seconds of downtime; 100,000 leaves a wide margin.
        using var broker = new MosquittoBroker(maxQueuedMessages: 100_000);
        await using var cluster = await ScaleOutCluster.StartAsync(broker, services.Influx, instances: 3);
        var victim = cluster.Instances[1];

        var sw = Stopwatch.StartNew();
        var publishing = cluster.PublishAsync(Messages, Rate);
        await Wait.UntilAsync(async () => cluster.Published >= Messages / 4 && (await cluster.ReceivedAsync()).All(r => r > 0),
            TimeSpan.FromSeconds(20), () => $"published {cluster.Published}; not every instance has received yet");
        long receivedBeforeKill = (await ScaleOutCluster.ReadyBodyAsync(victim)).GetProperty("received").GetInt64();
        victim.Kill();
        var killedAt = sw.Elapsed;
        long publishedAtKill = cluster.Published;

        // Away for a moment while the others go on, then started again on the same journal and client id.
        await Wait.UntilAsync(() => cluster.Published >= publishedAtKill + Rate, TimeSpan.FromSeconds(20),
            () => $"published {cluster.Published}");
        var restart = Stopwatch.StartNew();
        await victim.StartAsync();
        double startSeconds = restart.Elapsed.TotalSeconds;
        double downSeconds = (sw.Elapsed - killedAt).TotalSeconds;
        long backlogAtReady = (await ScaleOutCluster.ReadyBodyAsync(victim)).GetProperty("received").GetInt64();

        await publishing;
        double publishSeconds = sw.Elapsed.TotalSeconds;
        var (points, distinct) = await cluster.WaitUntilStoredAsync(Messages, TimeSpan.FromSeconds(45));
        double storedSeconds = sw.Elapsed.TotalSeconds;
        var received = await cluster.ReceivedAsync();

        output.WriteLine($"killed instance 1 at {killedAt.TotalSeconds:F1} s after {receivedBeforeKill} messages; " +
                         $"down {downSeconds:F1} s (restart to ready {startSeconds:F1} s); {backlogAtReady} received by the time it was ready");
        output.WriteLine($"received per instance (instance 1 since its restart): {string.Join(", ", received)}");
        output.WriteLine($"{Messages} published in {publishSeconds:F1} s, all stored after {storedSeconds:F1} s " +
                         $"({storedSeconds - publishSeconds:F1} s after the last publish)");
        output.WriteLine($"stored {points} points, {distinct} distinct sequence numbers: lost {Messages - distinct}, duplicates {points - distinct}");
        foreach (var line in victim.Log.Split('\n').Where(l => l.Contains("[6001]") || l.Contains("[6002]") || l.Contains("session present")))
            output.WriteLine("  " + line.Trim());

        // The restarted instance got what the broker had kept for it, and its share from then on.
        Assert.True(received[1] > 0, "the restarted instance received nothing");
        Assert.Equal(Messages, distinct);
        Assert.Equal(Messages, points);
    }

    /// <summary>
    /// Scale-down: an instance stopped with LeaveGroupOnShutdown unsubscribes before it disconnects, so
    /// the broker hands everything published afterwards to the remaining instance. Without it, the
    /// stopped instance's persistent session would keep taking every other message and hold them
    /// until it returned (or drop them beyond max_queued_messages, or lose them when it expires).
    /// </summary>
    [Fact]
    public async Task An_instance_that_leaves_the_group_at_shutdown_hands_its_share_to_the_others()
    {
        const int count = 8_000, rate = 2_000;
        using var broker = new MosquittoBroker();
        await using var cluster = await ScaleOutCluster.StartAsync(broker, services.Influx, instances: 2,
            i => i == 1 ? ["--Gateway:Mqtt:LeaveGroupOnShutdown=true"] : []);
        var leaving = cluster.Instances[1];

        var publishing = cluster.PublishAsync(count, rate);
        await Wait.UntilAsync(async () => cluster.Published >= count / 4 && (await cluster.ReceivedAsync()).All(r => r > 0),
            TimeSpan.FromSeconds(20), () => $"published {cluster.Published}; not every instance has received yet");
        Assert.Equal(0, leaving.Terminate(TimeSpan.FromSeconds(30)));
        long publishedWhenGone = cluster.Published;
        await publishing;

        var (points, distinct) = await cluster.WaitUntilStoredAsync(count, TimeSpan.FromSeconds(30));
        var remaining = (await cluster.ReceivedAsync())[0];
        output.WriteLine($"instance 1 left after {publishedWhenGone} of {count} messages; instance 0 received {remaining}; stored {points} ({distinct} distinct)");
        foreach (var line in leaving.Log.Split('\n').Where(l => l.Contains("[1020]") || l.Contains("[1021]"))) output.WriteLine("  " + line.Trim());

        Assert.Contains("[1020]", leaving.Log);
        Assert.True(publishedWhenGone < count, "publishing ended before the instance had left: nothing shows where later messages went");
        // Everything after the departure went to the instance that stayed.
        Assert.True(remaining >= count - publishedWhenGone, $"instance 0 received {remaining}, fewer than the {count - publishedWhenGone} published after instance 1 left");
        Assert.Equal(count, distinct);
        Assert.Equal(count, points);
    }

    /// <summary>
    /// What the README's scale-out section relies on, checked against the broker used here:
    /// mosquitto 2.0 keeps an offline member with a persistent session in the group's round-robin,
    /// queues its share in its session up to max_queued_messages and drops the rest; the member gets
    /// the queued ones when it returns. (If a later mosquitto hands an absent member's share to the
    /// others instead, this test fails and that section needs revisiting.)
    /// </summary>
    [Fact]
    public async Task Mosquitto_queues_an_absent_members_share_up_to_max_queued_messages()
    {
        const int maxQueued = 100, count = 1000;
        using var broker = new MosquittoBroker(maxQueuedMessages: maxQueued);
        var group = "$share/probe/probe/#";
        using var a = new Member(broker.Url, "member-a", group);
        var b = new Member(broker.Url, "member-b", group);
        await Task.WhenAll(a.ConnectAsync(), b.ConnectAsync());
        b.Dispose(); // DISCONNECT; the session and its subscription stay with the broker

        using (var pub = await Publisher.ConnectAsync(broker.Url))
        {
            for (int i = 0; i < count; i++) pub.Publish("probe/x", $"m{i}");
            // Two end markers: the round-robin hands one to each member, after everything before them.
            // Two end markers: the round-robin hands one to each member (b's is dropped with the rest).
            pub.Publish("probe/x", "end");
            pub.Publish("probe/x", "end");
            await pub.FlushAsync();
        }
        await Wait.UntilAsync(() => a.Payloads.Contains("end"), TimeSpan.FromSeconds(10), () => $"member a: {a.Payloads.Count} messages");

        using var back = new Member(broker.Url, "member-b", group);
        await back.ConnectAsync();
        using (var pub = await Publisher.ConnectAsync(broker.Url))
        {
            // One of these reaches b after everything its session had kept.
            pub.Publish("probe/x", "late");
            pub.Publish("probe/x", "late");
            await pub.FlushAsync();
        }
        await Wait.UntilAsync(() => back.Payloads.Contains("late"), TimeSpan.FromSeconds(10), () => $"member b: {back.Payloads.Count} messages");

        static bool Numbered(string p) => p.StartsWith('m');
        int toA = a.Payloads.Count(Numbered), toB = back.Payloads.Count(Numbered);
        output.WriteLine($"{count} messages with member b away (max_queued_messages {maxQueued}): a got {toA}, b got {toB} on its return, {count - toA - toB} dropped");
        // Round-robin over both members, present or not: half for each.
        Assert.InRange(toA, count * 4 / 10, count * 6 / 10);
        Assert.Equal(maxQueued, toB);
        Assert.True(toA + toB < count, "nothing was dropped beyond max_queued_messages");
    }

    /// <summary>A bare MQTT 5 client (MQTTnet) with a persistent session in a shared-subscription group;
    /// it acknowledges each message as it takes it.</summary>
    private sealed class Member(string url, string clientId, string filter) : IDisposable
    {
        private readonly MQTTnet.IMqttClient _client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        private readonly List<string> _payloads = [];

        public List<string> Payloads
        {
            get { lock (_payloads) return [.. _payloads]; }
        }

        public async Task ConnectAsync()
        {
            var uri = new Uri(url);
            _client.ApplicationMessageReceivedAsync += e =>
            {
                var text = System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload));
                lock (_payloads) _payloads.Add(text);
                return Task.CompletedTask;
            };
            var options = new MQTTnet.MqttClientOptionsBuilder()
                .WithClientId(clientId)
                .WithTcpServer(uri.Host, uri.Port)
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
                .WithCleanStart(false)
                .WithSessionExpiryInterval(300)
                // Enough in flight that the member present never has messages queued (and dropped) itself.
                .WithReceiveMaximum(1000)
                .Build();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _client.ConnectAsync(options, timeout.Token);
            var subscribe = new MQTTnet.MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(filter, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build();
            var answer = await _client.SubscribeAsync(subscribe, timeout.Token);
            var code = (int)answer.Items.Single().ResultCode;
            if (code > 2) throw new InvalidOperationException($"subscription to {filter} refused: {answer.Items.Single().ResultCode}");
        }

        /// <summary>Sends DISCONNECT (the session and its subscription stay with the broker) and closes.</summary>
        public void Dispose()
        {
            if (_client.IsConnected)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                _client.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptions(), timeout.Token).GetAwaiter().GetResult();
            }
            _client.Dispose();
        }
    }
}
