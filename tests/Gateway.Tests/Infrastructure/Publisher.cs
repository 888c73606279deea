using CityGateway.Simulators;
using CityGateway.Sources.Mqtt;

namespace CityGateway.Tests.Infrastructure;

/// <summary>A test's own MQTT publisher on MQTTnet (the simulators' <see cref="MqttPublishClient"/>);
/// waits for every QoS 1 acknowledgement.</summary>
public sealed class Publisher : IDisposable
{
    private readonly MqttPublishClient _client;
    private readonly string _url;
    private long _sent, _acked;

    public Publisher(MqttConnectionOptions options)
    {
        _url = options.Url;
        _client = new MqttPublishClient(new MqttPublishClientOptions
        {
            Url = options.Url,
            ClientId = options.ClientId,
            Username = string.IsNullOrEmpty(options.Username) ? null : options.Username,
            Password = options.Password,
            Tls = options.Tls.Enabled,
            CaFile = options.Tls.CaFile,
            CertFile = options.Tls.CertFile,
            KeyFile = options.Tls.KeyFile,
            Insecure = options.Tls.Insecure,
            MaxInFlight = options.MaxInflight,
            ProtocolVersion = options.ProtocolVersion,
            KeepAlive = TimeSpan.FromSeconds(Math.Max(5, options.KeepAliveSeconds)),
            ReconnectMin = TimeSpan.FromSeconds(Math.Max(1, options.ReconnectMinSeconds)),
            ReconnectMax = TimeSpan.FromSeconds(Math.Max(options.ReconnectMinSeconds, options.ReconnectMaxSeconds)),
        });
        // A QoS 1/2 acknowledgement, or a QoS 0 publish written to the socket.
        _client.Completed = (_, _) => Interlocked.Increment(ref _acked);
    }

    public static Task<Publisher> ConnectAsync(string url) => ConnectAsync(new MqttConnectionOptions { Url = url });

    public static async Task<Publisher> ConnectAsync(MqttConnectionOptions options)
    {
        options.ClientId = "test-pub-" + Guid.NewGuid().ToString("N")[..8];
        options.CleanSession = true;
        options.MaxInflight = 500;
        var p = new Publisher(options);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await p._client.ConnectAsync(timeout.Token);
        }
        catch (Exception e)
        {
            p.Dispose();
            throw new InvalidOperationException($"publisher cannot connect to {options.Url}: {MqttPublishClient.Describe(e)}", e);
        }
        return p;
    }

    /// <summary>Hands the message to the connection (the payload is copied); throws when the client refuses it.</summary>
    public void Publish(string topic, ReadOnlySpan<byte> payload, int qos = 1) => PublishOwned(topic, payload.ToArray(), qos);

    public void Publish(string topic, string payload, int qos = 1) => PublishOwned(topic, System.Text.Encoding.UTF8.GetBytes(payload), qos);

    private void PublishOwned(string topic, byte[] payload, int qos)
    {
        if (!_client.TryPublish(topic, payload, qos, null, out var error, out _))
            throw new InvalidOperationException($"publisher ({_url}): {error}");
        Interlocked.Increment(ref _sent);
    }

    public Task FlushAsync() => Wait.UntilAsync(() => Interlocked.Read(ref _acked) >= Interlocked.Read(ref _sent), TimeSpan.FromSeconds(30),
        () => $"publisher: {_acked} of {_sent} acknowledged");

    public void Dispose()
    {
        _client.Dispose();
    }
}
