using CityGateway.Core;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using CityGateway.Sources.Mqtt.Native;

namespace CityGateway.Sources.Mqtt;

/// <summary>A received PUBLISH as the client hands it over; the spans are valid only during the callback.</summary>
public readonly ref struct MqttIncoming
{
    public MqttIncoming(string topic, ReadOnlySpan<byte> payload, int qos, bool retain, int packetId = 0, object? ackHandle = null)
    {
        Ack = new MqttAck(ackHandle, packetId);
        Topic = topic;
        Payload = payload;
        Qos = qos;
        Retain = retain;
        PacketId = packetId;
    }

    /// <summary>The packet identifier of a QoS 1/2 message (0 for QoS 0): what an acknowledgement refers to.</summary>
    public int PacketId { get; }

    /// <summary>For a client that defers acknowledgements: what <see cref="IMqttConnection.AcknowledgeAsync"/>
    /// takes, valid after the callback has returned.</summary>
    public MqttAck Ack { get; }

    public string Topic { get; }
    public ReadOnlySpan<byte> Payload { get; }
    public int Qos { get; }
    public bool Retain { get; }
}

public delegate void MqttMessageHandler(in MqttIncoming message);

/// <summary>
/// One MQTT connection through libmosquitto. The library's own network thread (loop_start) reads,
/// writes, keeps alive and reconnects with capped exponential backoff; the callbacks below run on
/// that thread.
/// </summary>
public sealed unsafe class MosquittoClient : IDisposable
{
    private static readonly object InitLock = new();
    private static bool _initialised;

    private readonly MqttConnectionOptions _options;
    private readonly StringPool _topics;
    private readonly string _host;
    private readonly int _port;
    private IntPtr _mosq;
    private GCHandle _self;
    private bool _loopRunning;
    private int _protocol;
    private volatile bool _connected;
    private volatile bool _disposed;

    /// <param name="topics">Where message topics are pooled (the process's pool in the gateway; one of
    /// the client's own when not given).</param>
    public MosquittoClient(MqttConnectionOptions options, StringPool? topics = null)
    {
        _topics = topics ?? new StringPool(4096);
        _options = options;
        (_host, _port, var useTls) = options.ParseUrl();
        EnsureLibrary();
        _self = GCHandle.Alloc(this);
        _mosq = Mosquitto.New(options.ClientId, options.CleanSession, GCHandle.ToIntPtr(_self));
        if (_mosq == IntPtr.Zero)
        {
            _self.Free();
            throw new InvalidOperationException("mosquitto_new failed (out of memory or an invalid client id)");
        }
        _protocol = options.ProtocolVersion == 4 ? Mosquitto.ProtocolV311 : Mosquitto.ProtocolV5;
        Check(Mosquitto.IntOption(_mosq, Mosquitto.OptProtocolVersion, _protocol), "protocol version");
        Check(Mosquitto.IntOption(_mosq, Mosquitto.OptTcpNoDelay, 1), "tcp nodelay");
        if (options.MaxInflight > 0)
        {
            Check(Mosquitto.MaxInflightMessagesSet(_mosq, (uint)options.MaxInflight), "max inflight");
            Mosquitto.IntOption(_mosq, Mosquitto.OptReceiveMaximum, Math.Min(options.MaxInflight, 65535));
            Mosquitto.IntOption(_mosq, Mosquitto.OptSendMaximum, Math.Min(options.MaxInflight, 65535));
        }
        if (!string.IsNullOrEmpty(options.Username))
            Check(Mosquitto.UsernamePwSet(_mosq, options.Username, options.Password), "username/password");
        if (useTls)
        {
            const int optTlsUseOsCerts = 13;
            if (string.IsNullOrEmpty(options.Tls.CaFile))
                Mosquitto.IntOption(_mosq, optTlsUseOsCerts, 1);
            Check(Mosquitto.TlsSet(_mosq, options.Tls.CaFile, null, options.Tls.CertFile, options.Tls.KeyFile, IntPtr.Zero), "TLS settings");
            if (options.Tls.Insecure) Mosquitto.TlsInsecureSet(_mosq, true);
        }
        Check(Mosquitto.ReconnectDelaySet(_mosq, (uint)Math.Max(1, options.ReconnectMinSeconds),
            (uint)Math.Max(options.ReconnectMinSeconds, options.ReconnectMaxSeconds), true), "reconnect delay");
        Mosquitto.ConnectV5CallbackSet(_mosq, &OnConnectNative);
        Mosquitto.DisconnectV5CallbackSet(_mosq, &OnDisconnectNative);
        Mosquitto.MessageV5CallbackSet(_mosq, &OnMessageNative);
        Mosquitto.PublishV5CallbackSet(_mosq, &OnPublishNative);
        Mosquitto.SubscribeCallbackSet(_mosq, &OnSubscribeNative);
        Mosquitto.UnsubscribeCallbackSet(_mosq, &OnUnsubscribeNative);
    }

    /// <summary>Called after every CONNACK: reason code (0 = accepted) and whether the broker kept our session.</summary>
    public Action<int, bool>? Connected { get; set; }

    /// <summary>Called when the connection ends: 0 for a disconnect we asked for, otherwise the cause.</summary>
    public Action<int>? Disconnected { get; set; }

    public MqttMessageHandler? MessageReceived { get; set; }

    /// <summary>Called for every SUBACK: the message id of the SUBSCRIBE and the broker's answer for
    /// its one filter: the granted QoS (0–2), or a reason code of 128 or more when it was refused.</summary>
    public Action<int, int>? Subscribed { get; set; }

    /// <summary>Called for every UNSUBACK, with the message id of the UNSUBSCRIBE.</summary>
    public Action<int>? Unsubscribed { get; set; }

    /// <summary>Called when a QoS 1/2 publish is acknowledged (message id, reason code), or a QoS 0 one is sent.</summary>
    public Action<int, int>? Published { get; set; }

    public bool IsConnected => _connected;

    /// <summary>
    /// Whether libmosquitto's network thread reconnects by itself after a lost connection (the default,
    /// for publishers). When false, a lost connection ends the network thread and the owner reconnects
    /// with <see cref="Stop"/> and <see cref="TryConnect"/>.
    /// </summary>
    public bool ReconnectsItself { get; set; } = true;

    public string Endpoint => $"{_host}:{_port}";

    /// <summary>The MQTT version in use: 5 or 4 (3.1.1).</summary>
    public int ProtocolVersion => _protocol;

    public static string LibraryVersion
    {
        get
        {
            EnsureLibrary();
            Mosquitto.LibVersion(out var a, out var b, out var c);
            return $"{a}.{b}.{c}";
        }
    }

    /// <summary>
    /// Opens the TCP connection and sends CONNECT (the CONNACK arrives through <see cref="Connected"/>),
    /// then starts the network thread, which reconnects by itself from then on. Returns an error text
    /// if the socket could not be opened; the caller retries with its own backoff.
    /// </summary>
    public string? TryConnect()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        IntPtr props = IntPtr.Zero;
        try
        {
            if (_protocol == Mosquitto.ProtocolV5 && !_options.CleanSession && _options.SessionExpirySeconds > 0)
                Mosquitto.PropertyAddInt32(ref props, Mosquitto.PropSessionExpiryInterval, _options.SessionExpirySeconds);
            int rc = Mosquitto.ConnectBindV5(_mosq, _host, _port, Math.Max(5, _options.KeepAliveSeconds), null, props);
            if (rc != Mosquitto.ErrSuccess)
                return Mosquitto.ErrorText(rc);
        }
        finally
        {
            if (props != IntPtr.Zero) Mosquitto.PropertyFreeAll(ref props);
        }
        if (!_loopRunning)
        {
            Check(Mosquitto.LoopStart(_mosq), "loop start");
            _loopRunning = true;
        }
        return null;
    }

    /// <summary>Switches to MQTT 3.1.1 for brokers that refuse MQTT 5. Only valid before <see cref="TryConnect"/>
    /// or after <see cref="Stop"/>.</summary>
    public void UseProtocol311() => UseProtocolVersion(4);

    /// <summary>Sets the MQTT version of the next connect: 5, or 4 (3.1.1). Same rules as <see cref="UseProtocol311"/>.</summary>
    public void UseProtocolVersion(int version)
    {
        _protocol = version == 4 ? Mosquitto.ProtocolV311 : Mosquitto.ProtocolV5;
        Mosquitto.IntOption(_mosq, Mosquitto.OptProtocolVersion, _protocol);
    }

    /// <summary>Queues a SUBSCRIBE for one filter; returns libmosquitto's error code (0: sent) and the
    /// message id that the broker's answer carries (<see cref="Subscribed"/>).</summary>
    public int Subscribe(string filter, int qos, out int mid) => Mosquitto.Subscribe(_mosq, out mid, filter, qos);

    public int Subscribe(string filter, int qos) => Subscribe(filter, qos, out _);

    /// <summary>Queues an UNSUBSCRIBE for one filter; returns libmosquitto's error code and the message id.</summary>
    public int Unsubscribe(string filter, out int mid) => Mosquitto.Unsubscribe(_mosq, out mid, filter);

    /// <summary>Queues a publish; returns the message id, or throws when the client cannot queue it.</summary>
    public int Publish(string topic, ReadOnlySpan<byte> payload, int qos, bool retain = false)
    {
        int max = Encoding.UTF8.GetMaxByteCount(topic.Length) + 1;
        Span<byte> topicBytes = max <= 512 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(topic, topicBytes);
        topicBytes[n] = 0;
        int rc;
        int mid;
        fixed (byte* t = topicBytes)
        fixed (byte* p = payload)
            rc = Mosquitto.Publish(_mosq, out mid, t, payload.Length, p, qos, retain);
        if (rc != Mosquitto.ErrSuccess)
            throw new MqttException(rc, $"publish to '{topic}' failed: {Mosquitto.ErrorText(rc)}");
        return mid;
    }

    /// <summary>Sends DISCONNECT and stops the network thread.</summary>
    public void Stop()
    {
        if (_mosq == IntPtr.Zero) return;
        Mosquitto.Disconnect(_mosq);
        if (_loopRunning)
        {
            Mosquitto.LoopStop(_mosq, false);
            _loopRunning = false;
        }
        _connected = false;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Stop();
        Mosquitto.Destroy(_mosq);
        _mosq = IntPtr.Zero;
        if (_self.IsAllocated) _self.Free();
    }

    public static string DescribeConnack(int code) => Mosquitto.ReasonText(code);

    public static string DescribeError(int code) => Mosquitto.ErrorText(code);

    private static void EnsureLibrary()
    {
        lock (InitLock)
        {
            if (_initialised) return;
            try
            {
                Mosquitto.LibInit();
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidOperationException(
                    "libmosquitto.so.1 was not found. Install it (Debian/Ubuntu: apt-get install libmosquitto1).", e);
            }
            _initialised = true;
        }
    }

    private static void Check(int rc, string what)
    {
        if (rc != Mosquitto.ErrSuccess) throw new MqttException(rc, $"libmosquitto {what}: {Mosquitto.ErrorText(rc)}");
    }

    private static MosquittoClient? From(IntPtr userData) =>
        userData == IntPtr.Zero ? null : GCHandle.FromIntPtr(userData).Target as MosquittoClient;

    private long _callbackFaults;
    private volatile string? _lastCallbackFault;

    /// <summary>Exceptions thrown by a handler inside a libmosquitto callback, caught there so that none
    /// crosses into native code; the connection's owner reports them (event 1023).</summary>
    public long CallbackFaults => Interlocked.Read(ref _callbackFaults);

    /// <summary>The last of those: which callback, the exception's type and message.</summary>
    public string? LastCallbackFault => _lastCallbackFault;

    private void Fault(string callback, Exception e)
    {
        _lastCallbackFault = $"{callback} callback: {e.GetType().Name}: {e.Message}";
        Interlocked.Increment(ref _callbackFaults);
    }

    // Exceptions must never cross back into native code: each callback catches everything and counts it.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnConnectNative(IntPtr mosq, IntPtr userData, int rc, int flags, IntPtr props)
    {
        var self = From(userData);
        if (self is null) return;
        self._connected = rc == 0;
        try { self.Connected?.Invoke(rc, (flags & 1) != 0); } catch (Exception e) { self.Fault("connect", e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnDisconnectNative(IntPtr mosq, IntPtr userData, int rc, IntPtr props)
    {
        var self = From(userData);
        if (self is null) return;
        self._connected = false;
        // The socket is already closed here; marking the client disconnected makes the network thread
        // end instead of reconnecting (libmosquitto's loop checks the state after this callback).
        if (rc != 0 && !self.ReconnectsItself) Mosquitto.Disconnect(mosq);
        try { self.Disconnected?.Invoke(rc); } catch (Exception e) { self.Fault("disconnect", e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMessageNative(IntPtr mosq, IntPtr userData, Mosquitto.Message* message, IntPtr props)
    {
        var self = From(userData);
        if (self?.MessageReceived is not { } handler || message is null) return;
        try
        {
            // Each device publishes on its own topic, again and again: the pool gives its string without allocating.
            var topic = message->Topic is null ? "" : self._topics.Get(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(message->Topic));
            var payload = new ReadOnlySpan<byte>(message->Payload, message->PayloadLen);
            handler(new MqttIncoming(topic, payload, message->Qos, message->Retain, message->Mid));
        }
        catch (Exception e)
        {
            self.Fault("message", e);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnSubscribeNative(IntPtr mosq, IntPtr userData, int mid, int count, int* granted)
    {
        var self = From(userData);
        if (self?.Subscribed is not { } handler) return;
        // One filter per SUBSCRIBE; a SUBACK without an entry counts as refused.
        try { handler(mid, count > 0 && granted is not null ? granted[0] : 128); } catch (Exception e) { self.Fault("subscribe", e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnUnsubscribeNative(IntPtr mosq, IntPtr userData, int mid)
    {
        var self = From(userData);
        try { self?.Unsubscribed?.Invoke(mid); } catch (Exception e) { self?.Fault("unsubscribe", e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnPublishNative(IntPtr mosq, IntPtr userData, int mid, int reasonCode, IntPtr props)
    {
        var self = From(userData);
        try { self?.Published?.Invoke(mid, reasonCode); } catch (Exception e) { self?.Fault("publish", e); }
    }
}

public sealed class MqttException(int code, string message) : Exception(message)
{
    public int Code { get; } = code;
}
