namespace CityGateway.Sources.Mqtt;

/// <summary>How to reach and authenticate to a broker. Shared by the gateway's source and the simulators.</summary>
public sealed class MqttConnectionOptions
{
    /// <summary>Off for a gateway that only reads serial ports.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>mqtt://host:port, or mqtts://host:port for TLS.</summary>
    public string Url { get; set; } = "mqtt://127.0.0.1:1883";

    /// <summary>Stable client id; a persistent session is bound to it.</summary>
    public string ClientId { get; set; } = "city-gateway";

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>False keeps a persistent session: the broker queues QoS 1/2 messages while we are away.</summary>
    public bool CleanSession { get; set; }

    /// <summary>MQTT 5 session expiry interval used when <see cref="CleanSession"/> is false.</summary>
    public uint SessionExpirySeconds { get; set; } = 86400;

    /// <summary>5 (preferred; falls back to 3.1.1 if the broker refuses it) or 4 for MQTT 3.1.1.</summary>
    public int ProtocolVersion { get; set; } = 5;

    public int KeepAliveSeconds { get; set; } = 30;

    public int ReconnectMinSeconds { get; set; } = 1;

    public int ReconnectMaxSeconds { get; set; } = 30;

    /// <summary>
    /// When set, every route's filter is subscribed as the MQTT 5 shared subscription
    /// <c>$share/{SharedGroup}/{filter}</c>: the broker hands each message to one member of the group,
    /// so several gateway instances (each with its own ClientId and journal) split the load. Empty:
    /// ordinary subscriptions, every instance receives every message.
    /// </summary>
    public string SharedGroup { get; set; } = "";

    /// <summary>
    /// With <see cref="SharedGroup"/>: at shutdown, unsubscribe first and take in what the broker had
    /// already handed over, so that the broker stops giving this instance a share while it is away.
    /// For an instance being retired (scale-down); not for all instances at once: a group whose last
    /// member has left drops what is published to it.
    /// </summary>
    public bool LeaveGroupOnShutdown { get; set; }

    /// <summary>Maximum QoS 1/2 messages in flight in each direction (the MQTT 5 receive maximum we
    /// announce): unacknowledged messages beyond it wait at the broker.</summary>
    public int MaxInflight { get; set; } = 1000;

    /// <summary>Socket send and receive buffer size. 256 KiB: with MQTTnet's
    /// 8 KiB default QoS 1 intake under load stalled at a few hundred messages a second.</summary>
    public int SocketBufferBytes { get; set; } = 256 * 1024;

    public MqttTlsOptions Tls { get; set; } = new();

    internal (string Host, int Port, bool UseTls) ParseUrl()
    {
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri))
            throw new FormatException($"'{Url}' is not an absolute URL such as mqtt://host:1883");
        bool tls = uri.Scheme switch
        {
            "mqtt" or "tcp" => false,
            "mqtts" or "ssl" or "tls" => true,
            _ => throw new FormatException($"scheme '{uri.Scheme}' is not supported; use mqtt:// or mqtts://"),
        };
        int port = uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 8883 : 1883) : uri.Port;
        return (uri.Host, port, tls || Tls.Enabled);
    }
}

public sealed class MqttTlsOptions
{
    /// <summary>Use TLS even with an mqtt:// URL.</summary>
    public bool Enabled { get; set; }

    /// <summary>CA certificate file (PEM). Without it the operating system's CA store is used.</summary>
    public string? CaFile { get; set; }

    /// <summary>Client certificate (PEM), for brokers that authenticate clients by certificate.</summary>
    public string? CertFile { get; set; }

    public string? KeyFile { get; set; }

    /// <summary>Skip verification of the broker's host name. For test set-ups only.</summary>
    public bool Insecure { get; set; }
}
