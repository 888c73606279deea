using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>A broker restart mid-run: the gateway reconnects, subscribes again, and keeps storing.</summary>
[Collection(ServicesCollection.Name)]
public sealed class BrokerRestartTests(ServicesFixture services)
{
    [Fact]
    public async Task Gateway_reconnects_and_resubscribes_after_a_broker_restart()
    {
        // A broker of its own, without persistence: after the restart it has forgotten every
        // session and subscription, so only a gateway that subscribes again receives anything.
        using var broker = new MosquittoBroker(persistence: false);
        using var dir = new TempDir("restart");
        var registry = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("restart");
        await using var gateway = await GatewayRunner.StartAsync(broker.Url, services.Influx.Url, db, registry,
            "--Gateway:Mqtt:ReconnectMinSeconds=1", "--Gateway:Mqtt:ReconnectMaxSeconds=2");

        long baseMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        int seq = 0;
        void PublishBatch(Publisher p, int n)
        {
            for (int i = 0; i < n; i++)
            {
                seq++;
                p.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{baseMs + seq}},"seq":{{seq}},"pm25":7.5}""");
            }
        }

        using (var before = await Publisher.ConnectAsync(broker.Url))
        {
            PublishBatch(before, 25);
            await before.FlushAsync();
        }
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == 25,
            TimeSpan.FromSeconds(30), () => "the messages before the restart were not stored");

        broker.Stop();
        await Wait.UntilAsync(() => !gateway.Health.BrokerConnected, TimeSpan.FromSeconds(30),
            () => "the gateway did not notice the broker going away");
        var (status, body) = await gateway.GetJsonAsync("/readyz");
        Assert.Equal(503, status);
        Assert.False(body.GetProperty("broker").GetProperty("connected").GetBoolean());

        broker.Start();
        await Wait.UntilAsync(() => gateway.Health.BrokerConnected, TimeSpan.FromSeconds(30),
            () => $"the gateway did not reconnect: {gateway.Health.BrokerDetail}");

        // The gateway subscribes from its connect callback; a publisher that connects after the
        // reconnect may still race the SUBSCRIBE, so publish until the first message is seen.
        using (var after = await Publisher.ConnectAsync(broker.Url))
        {
            await Wait.UntilAsync(async () =>
            {
                if (await services.Influx.CountAsync(db, "environment", "seq") > 25) return true;
                PublishBatch(after, 1);
                await after.FlushAsync();
                return false;
            }, TimeSpan.FromSeconds(30), () => "no message published after the restart arrived: not subscribed again?");
            // Probes published before the gateway subscribed again are gone (no persistence), and late
            // probes may still be arriving: count only the batch published after the probing.
            int lastProbe = seq;
            PublishBatch(after, 25);
            await after.FlushAsync();
            await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq", $"\"seq\" > {lastProbe}") == 25,
                TimeSpan.FromSeconds(30), () => "the messages after the restart were not all stored");
        }
        Assert.Equal(200, (await gateway.GetJsonAsync("/readyz")).Status);
    }
}
