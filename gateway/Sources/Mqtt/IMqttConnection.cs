namespace CityGateway.Sources.Mqtt;

/// <summary>
/// The MQTT client as the source needs it: one connection that the source opens, subscribes and
/// closes, and re-opens itself after a loss (an implementation never reconnects on its own, so
/// backoff and resubscription live in one place, <see cref="MqttSource"/>). Results are MQTT's own:
/// CONNACK and SUBACK reason codes, DISCONNECT reasons. <see cref="MqttNetConnection"/> implements it
/// over MQTTnet; the tests implement it without a broker.
/// </summary>
public interface IMqttConnection : IDisposable
{
    /// <summary>host:port, for logs and /readyz.</summary>
    string Endpoint { get; }

    /// <summary>The client library and its version, for the start-up log.</summary>
    string Implementation { get; }

    bool IsConnected { get; }

    /// <summary>Exceptions a handler threw on the client's thread that the client caught instead of
    /// letting them reach the library; counted since start.</summary>
    long CallbackFaults { get; }

    /// <summary>The last of those faults, or null while there is none.</summary>
    string? LastCallbackFault { get; }

    /// <summary>Each received PUBLISH, on the client's own thread; the message's spans are valid only
    /// during the call. The handler acknowledges it later, once it is durable, with <see cref="AcknowledgeAsync"/>
    /// and the message's <see cref="MqttIncoming.Ack"/>.</summary>
    MqttMessageHandler? MessageReceived { get; set; }

    /// <summary>An accepted connection ended without <see cref="DisconnectAsync"/>; the caller reconnects.</summary>
    Action<MqttDisconnect>? ConnectionLost { get; set; }

    /// <summary>Opens the connection with the protocol version asked for and returns the broker's answer
    /// (CONNACK), or <see cref="MqttConnectOutcome.Unreachable"/> when no answer came. Never throws for
    /// a broker that is down or refuses.</summary>
    Task<MqttConnectResult> ConnectAsync(MqttProtocol protocol, CancellationToken ct);

    /// <summary>Subscribes to each filter; one result per filter, in order, once the broker answered
    /// (or the connection ended: refused with that reason).</summary>
    Task<MqttSubscribeResult[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct);

    /// <summary>Unsubscribes from each filter; one result per filter, in order.</summary>
    Task<MqttUnsubscribeResult[]> UnsubscribeAsync(IReadOnlyList<string> filters, CancellationToken ct);

    /// <summary>Sends DISCONNECT (session kept as configured) and closes; no callback runs after it returns.</summary>
    Task DisconnectAsync(CancellationToken ct);

    /// <summary>Acknowledges a QoS 1/2 message (PUBACK) after its handler has returned, from any thread;
    /// the caller acknowledges in the order the messages came. No acknowledgement leaves before this is
    /// called for it, so the source sends it only once the journal has synced the message. False when
    /// nothing was sent because the message's connection has ended: the broker delivers it again on the
    /// next one. Never throws for a lost connection.</summary>
    ValueTask<bool> AcknowledgeAsync(MqttAck ack, CancellationToken ct);
}

/// <summary>A received PUBLISH as the client hands it over; the spans are valid only during the callback.</summary>
public readonly ref struct MqttIncoming
{
    public MqttIncoming(string topic, ReadOnlySpan<byte> payload, int qos, bool retain, int packetId = 0, object? ackHandle = null, bool duplicate = false)
    {
        Ack = new MqttAck(ackHandle, packetId);
        Topic = topic;
        Payload = payload;
        Qos = qos;
        Retain = retain;
        PacketId = packetId;
        Duplicate = duplicate;
    }

    /// <summary>The packet identifier of a QoS 1/2 message (0 for QoS 0): what an acknowledgement refers to.</summary>
    public int PacketId { get; }

    /// <summary>What <see cref="IMqttConnection.AcknowledgeAsync"/> takes, valid after the callback has returned.</summary>
    public MqttAck Ack { get; }

    public string Topic { get; }
    public ReadOnlySpan<byte> Payload { get; }
    public int Qos { get; }
    public bool Retain { get; }

    /// <summary>The DUP flag: the broker sent this message before (on an earlier connection of our session)
    /// and had no acknowledgement for it.</summary>
    public bool Duplicate { get; }
}

public delegate void MqttMessageHandler(in MqttIncoming message);

/// <summary>What an acknowledgement refers to: the client's own handle for one received message (and
/// the connection it came on) and its packet id. Default: nothing to acknowledge.</summary>
public readonly record struct MqttAck(object? Handle, int PacketId)
{
    public bool IsNone => Handle is null;
}

public enum MqttProtocol
{
    V311 = 4,
    V5 = 5,
}

public enum MqttConnectOutcome
{
    Accepted,
    /// <summary>The broker answered CONNACK with a refusal (credentials, protocol, ...).</summary>
    Refused,
    /// <summary>No CONNACK: the socket could not be opened, closed first, or the answer did not come in time.</summary>
    Unreachable,
}

/// <summary>The outcome of one connect: the CONNACK reason code (0 accepted) and its text, and whether the
/// broker kept our session.</summary>
public readonly record struct MqttConnectResult(MqttConnectOutcome Outcome, int Code, string Reason, bool SessionPresent = false)
{
    public static MqttConnectResult Accepted(bool sessionPresent) => new(MqttConnectOutcome.Accepted, 0, "accepted", sessionPresent);

    public static MqttConnectResult Refused(int code, string reason) => new(MqttConnectOutcome.Refused, code, reason);

    public static MqttConnectResult Unreachable(string reason) => new(MqttConnectOutcome.Unreachable, -1, reason);
}

public readonly record struct MqttSubscription(string Filter, int Qos);

/// <summary>The broker's answer for one filter: granted at a QoS, or refused with a reason code (128 or more,
/// or -1 when the SUBSCRIBE could not be sent or was not answered) and its text.</summary>
public readonly record struct MqttSubscribeResult(string Filter, bool Granted, int GrantedQos, int Code, string Reason)
{
    public static MqttSubscribeResult Grant(string filter, int qos) => new(filter, true, qos, qos, "granted");

    public static MqttSubscribeResult Refuse(string filter, int code, string reason) => new(filter, false, -1, code, reason);
}

/// <summary>Whether the broker answered the UNSUBSCRIBE for one filter; the reason when it was not sent or not answered.</summary>
public readonly record struct MqttUnsubscribeResult(string Filter, bool Answered, string? Error = null);

public enum MqttDisconnectKind
{
    /// <summary>The socket closed or keep-alive expired; <see cref="MqttDisconnect.Code"/> is the client library's error.</summary>
    Transport,
    /// <summary>The broker sent DISCONNECT; <see cref="MqttDisconnect.Code"/> is its MQTT 5 reason code.</summary>
    ByBroker,
}

public readonly record struct MqttDisconnect(MqttDisconnectKind Kind, int Code, string Reason)
{
    /// <summary>MQTT 5 DISCONNECT reason 0x8E: another client connected with our client id.</summary>
    public bool SessionTakenOver => Kind == MqttDisconnectKind.ByBroker && Code == 0x8E;
}
