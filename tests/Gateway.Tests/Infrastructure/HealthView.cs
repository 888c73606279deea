using CityGateway.Sources.Mqtt;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Infrastructure;

/// <summary>What the tests read of the broker and InfluxDB states, under the names they have always
/// used; each property reads the component's current snapshot.</summary>
public sealed class HealthView(BrokerState broker, InfluxState influx)
{
    public bool BrokerConnected => broker.IsConnected;
    public string BrokerDetail => broker.Detail;
    public SubscriptionStatus[] Subscriptions => broker.Subscriptions.ToArray();
    public bool InfluxReachable => influx.IsReachable;
    public string InfluxDetail => influx.Detail;
    public bool InfluxUnauthorised => influx.IsUnauthorised;
}
