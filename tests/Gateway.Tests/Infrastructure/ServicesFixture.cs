namespace CityGateway.Tests.Infrastructure;

/// <summary>One broker and one InfluxDB shared by the integration tests; each test uses its own database.</summary>
public sealed class ServicesFixture : IDisposable
{
    public ServicesFixture()
    {
        Influx = new InfluxServer();
        Broker = new MosquittoBroker();
    }

    public InfluxServer Influx { get; }

    public MosquittoBroker Broker { get; }

    public static string NewDatabase(string prefix) => $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 40)];

    public void Dispose()
    {
        Broker.Dispose();
        Influx.Dispose();
    }
}

/// <summary>Integration tests run one after another: they share the broker and its topics.</summary>
[CollectionDefinition(Name)]
public sealed class ServicesCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "real services";
}
