using CityGateway.Sources.Mqtt;

namespace CityGateway.Tests.Infrastructure;

/// <summary>A test's own MQTT publisher on the gateway's libmosquitto binding; waits for every QoS 1 acknowledgement.</summary>
public sealed class Publisher : IDisposable
{
    private readonly MosquittoClient _client;
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sent, _acked;

    public Publisher(MqttConnectionOptions options)
    {
        _client = new MosquittoClient(options);
        _client.Connected = (rc, _) => { if (rc == 0) _connected.TrySetResult(); };
        _client.Published = (_, _) => Interlocked.Increment(ref _acked);
    }

    public static Task<Publisher> ConnectAsync(string url) => ConnectAsync(new MqttConnectionOptions { Url = url });

    public static async Task<Publisher> ConnectAsync(MqttConnectionOptions options)
    {
        options.ClientId = "test-pub-" + Guid.NewGuid().ToString("N")[..8];
        options.CleanSession = true;
        options.MaxInflight = 500;
        var p = new Publisher(options);
        var error = p._client.TryConnect();
        if (error is not null) throw new InvalidOperationException($"publisher cannot connect to {options.Url}: {error}");
        await p._connected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return p;
    }

    public void Publish(string topic, ReadOnlySpan<byte> payload, int qos = 1)
    {
        _client.Publish(topic, payload, qos);
        Interlocked.Increment(ref _sent);
    }

    public void Publish(string topic, string payload, int qos = 1) => Publish(topic, System.Text.Encoding.UTF8.GetBytes(payload), qos);

    public Task FlushAsync() => Wait.UntilAsync(() => Interlocked.Read(ref _acked) >= Interlocked.Read(ref _sent), TimeSpan.FromSeconds(30),
        () => $"publisher: {_acked} of {_sent} acknowledged");

    public void Dispose()
    {
        _client.Dispose();
    }
}
