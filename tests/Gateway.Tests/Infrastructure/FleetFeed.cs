using CityGateway.Simulators;

namespace CityGateway.Tests.Infrastructure;

/// <summary>A simulated fleet's readings published to a broker, waited for until InfluxDB holds them all.</summary>
public static class FleetFeed
{
    /// <summary>
    /// Publishes <paramref name="fleet"/> with device times spread over the last two hours (one
    /// message every 5 s of simulated time) and waits until every message's point is stored in
    /// <paramref name="database"/>; returns how many messages were published.
    /// </summary>
    public static async Task<int> PublishAndWaitAsync(InfluxServer influx, string brokerUrl, string database, SimulatorOptions fleet, string label = "")
    {
        var messages = FleetSimulator.Generate(fleet, DateTimeOffset.UtcNow.AddHours(-2), TimeSpan.FromSeconds(5)).ToList();
        using (var pub = await Publisher.ConnectAsync(brokerUrl))
        {
            foreach (var m in messages) pub.Publish(m.Topic, m.Payload);
            await pub.FlushAsync();
        }
        long stored = 0;
        await Wait.UntilAsync(async () =>
        {
            stored = 0;
            foreach (var domain in Faults.Delivery.Measurements) stored += await influx.CountAsync(database, domain, "seq");
            return stored >= messages.Count;
        }, TimeSpan.FromSeconds(60), () => $"{label}stored {stored} of {messages.Count}");
        return messages.Count;
    }
}
