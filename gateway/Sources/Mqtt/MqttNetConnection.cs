using System.Buffers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CityGateway.Core;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// <see cref="IMqttConnection"/> over MQTTnet 5. Acknowledgements are in the caller's hands: every
/// message is taken with AutoAcknowledge off, and the PUBACK leaves only when
/// <see cref="AcknowledgeAsync"/> is called for it, which the source does once the journal has synced
/// the message.
/// </summary>
/// <remarks>
/// Each connect uses a client of its own: MQTTnet writes an acknowledgement on whatever connection
/// its client has at the time, so a handle kept across a reconnect would acknowledge a packet id of
/// the new connection. With one client per connection an old handle can only fail (the broker then
/// delivers the message again), and events of an old client are recognised and ignored.
/// The socket buffers are set (<see cref="MqttConnectionOptions.SocketBufferBytes"/>): MQTTnet's 8 KiB
/// default stalled QoS 1 intake under load.
/// </remarks>
public sealed class MqttNetConnection : IMqttConnection
{
    private static readonly string LibraryVersion =
        typeof(MqttClientFactory).Assembly.GetName().Version?.ToString() ?? "5";

    private readonly MqttConnectionOptions _options;
    private readonly StringPool _topics;
    private readonly MqttClientFactory _factory = new();
    private readonly string _host;
    private readonly int _port;
    private readonly bool _useTls;
    private readonly object _lock = new();
    private IMqttClient? _client;
    // The current client's CONNACK accepted us, and we have not asked it to disconnect.
    private bool _accepted;
    private long _callbackFaults;
    private volatile string? _lastCallbackFault;
    private X509Certificate2Collection? _caCertificates;
    private X509Certificate2? _clientCertificate;

    public MqttNetConnection(IOptions<MqttConnectionOptions> options, StringPool topics)
    {
        _options = options.Value;
        _topics = topics;
        (_host, _port, _useTls) = _options.ParseUrl();
        Endpoint = $"{_host}:{_port}";
    }

    public string Endpoint { get; }

    public string Implementation => "MQTTnet " + LibraryVersion;

    public bool IsConnected => Volatile.Read(ref _client)?.IsConnected == true;

    public long CallbackFaults => Interlocked.Read(ref _callbackFaults);

    public string? LastCallbackFault => _lastCallbackFault;

    public MqttMessageHandler? MessageReceived { get; set; }

    public Action<MqttDisconnect>? ConnectionLost { get; set; }

    public async Task<MqttConnectResult> ConnectAsync(MqttProtocol protocol, CancellationToken ct)
    {
        await CloseCurrentAsync().ConfigureAwait(false);
        MqttClientOptions options;
        try
        {
            options = BuildOptions(protocol);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            // A certificate or key that cannot be read: reported by the source's loop, which retries.
            return MqttConnectResult.Unreachable(_useTls ? $"TLS settings (Gateway:Mqtt:Tls): {e.Message}" : e.Message);
        }
        var client = _factory.CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e => OnMessage(client, e);
        client.ConnectedAsync += _ => OnConnected(client);
        client.DisconnectedAsync += e => OnDisconnected(client, e);
        lock (_lock)
        {
            _client = client;
            _accepted = false;
        }
        // A broker that takes the socket but never answers is noticed here rather than at keep-alive.
        var answerBy = TimeSpan.FromSeconds(Math.Max(10, _options.KeepAliveSeconds));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(answerBy);
        try
        {
            var result = await client.ConnectAsync(options, timeout.Token).ConfigureAwait(false);
            if (result.ResultCode == MqttClientConnectResultCode.Success)
                return MqttConnectResult.Accepted(result.IsSessionPresent);
            int code = (int)result.ResultCode;
            return MqttConnectResult.Refused(code, string.IsNullOrEmpty(result.ReasonString) ? DescribeReason(code) : result.ReasonString);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CloseCurrentAsync().ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException)
        {
            await CloseCurrentAsync().ConfigureAwait(false);
            return MqttConnectResult.Unreachable($"no CONNACK within {answerBy.TotalSeconds:F0} s");
        }
        catch (Exception e)
        {
            await CloseCurrentAsync().ConfigureAwait(false);
            return MqttConnectResult.Unreachable(Describe(e));
        }
    }

    public async Task<MqttSubscribeResult[]> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct)
    {
        var client = Volatile.Read(ref _client);
        if (client is null || !client.IsConnected)
            return subscriptions.Select(s => MqttSubscribeResult.Refuse(s.Filter, -1, "not connected")).ToArray();
        var request = new MqttClientSubscribeOptions();
        foreach (var s in subscriptions)
            request.TopicFilters.Add(new MqttTopicFilter { Topic = s.Filter, QualityOfServiceLevel = (MqttQualityOfServiceLevel)Math.Clamp(s.Qos, 0, 2) });
        MqttClientSubscribeResult answer;
        try
        {
            answer = await client.SubscribeAsync(request, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            var reason = client.IsConnected ? Describe(e) : "no answer: the connection ended";
            return subscriptions.Select(s => MqttSubscribeResult.Refuse(s.Filter, -1, reason)).ToArray();
        }
        var items = answer.Items.ToArray();
        var results = new MqttSubscribeResult[subscriptions.Count];
        for (int i = 0; i < results.Length; i++)
        {
            var filter = subscriptions[i].Filter;
            if (i >= items.Length)
            {
                results[i] = MqttSubscribeResult.Refuse(filter, 128, "the SUBACK has no entry for this filter");
                continue;
            }
            int code = (int)items[i].ResultCode;
            results[i] = code <= 2
                ? MqttSubscribeResult.Grant(filter, code)
                : MqttSubscribeResult.Refuse(filter, code, string.IsNullOrEmpty(answer.ReasonString) ? DescribeReason(code) : answer.ReasonString);
        }
        return results;
    }

    public async Task<MqttUnsubscribeResult[]> UnsubscribeAsync(IReadOnlyList<string> filters, CancellationToken ct)
    {
        var client = Volatile.Read(ref _client);
        if (client is null || !client.IsConnected)
            return filters.Select(f => new MqttUnsubscribeResult(f, false)).ToArray();
        var request = new MqttClientUnsubscribeOptions();
        foreach (var f in filters) request.TopicFilters.Add(f);
        try
        {
            var answer = await client.UnsubscribeAsync(request, ct).ConfigureAwait(false);
            var answered = answer.Items.Select(i => i.TopicFilter).ToHashSet(StringComparer.Ordinal);
            return filters.Select(f => new MqttUnsubscribeResult(f, answered.Contains(f) || answer.Items.Count == filters.Count)).ToArray();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // Not answered: the connection ended, or the request could not be sent.
            var error = client.IsConnected ? Describe(e) : null;
            return filters.Select(f => new MqttUnsubscribeResult(f, false, error)).ToArray();
        }
    }

    public Task DisconnectAsync(CancellationToken ct) => CloseCurrentAsync();

    public ValueTask<bool> AcknowledgeAsync(MqttAck ack, CancellationToken ct) =>
        ack.Handle is MqttApplicationMessageReceivedEventArgs e ? new ValueTask<bool>(SendAck(e, ct)) : ValueTask.FromResult(false);

    public void Dispose()
    {
        IMqttClient? client;
        lock (_lock)
        {
            client = _client;
            _client = null;
            _accepted = false;
        }
        client?.Dispose();
    }

    /// <summary>Writes the PUBACK on the connection the message came on; a connection that has ended
    /// takes nothing (the broker delivers the message again), so this never throws for it.</summary>
    private static async Task<bool> SendAck(MqttApplicationMessageReceivedEventArgs e, CancellationToken ct)
    {
        try
        {
            await e.AcknowledgeAsync(ct).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            // Disconnected, disposed or already acknowledged: nothing more can be done for this message.
            return false;
        }
    }

    /// <summary>Sends DISCONNECT on the current client (the session stays as configured), waits until its
    /// loops have ended, and drops it: no handler of it runs after this returns.</summary>
    private async Task CloseCurrentAsync()
    {
        IMqttClient? client;
        lock (_lock)
        {
            client = _client;
            _client = null;
            _accepted = false;
        }
        if (client is null) return;
        try
        {
            if (client.IsConnected)
            {
                var reason = new MqttClientDisconnectOptions { Reason = MqttClientDisconnectOptionsReason.NormalDisconnection };
                using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await client.DisconnectAsync(reason, bound.Token).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Already gone: the broker keeps the session either way.
        }
        client.Dispose();
    }

    private Task OnConnected(IMqttClient client)
    {
        lock (_lock)
            if (ReferenceEquals(client, _client)) _accepted = true;
        return Task.CompletedTask;
    }

    private Task OnDisconnected(IMqttClient client, MqttClientDisconnectedEventArgs e)
    {
        bool lost;
        lock (_lock)
        {
            // Only an accepted connection of the current client that we did not close ourselves.
            lost = ReferenceEquals(client, _client) && _accepted && e.ClientWasConnected;
            if (lost) _accepted = false;
        }
        if (!lost) return Task.CompletedTask;
        // The broker's DISCONNECT carries its reason code; a closed socket or a missed keep-alive does not.
        int reason = (int)e.Reason;
        var disconnect = e.Exception is null && reason != 0
            ? new MqttDisconnect(MqttDisconnectKind.ByBroker, reason, string.IsNullOrEmpty(e.ReasonString) ? DescribeReason(reason) : e.ReasonString)
            : new MqttDisconnect(MqttDisconnectKind.Transport, 0, e.Exception is null ? "the broker closed the connection" : Describe(e.Exception));
        try
        {
            ConnectionLost?.Invoke(disconnect);
        }
        catch (Exception ex)
        {
            Fault("disconnect", ex);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// MQTTnet calls this for one message at a time on the client's receiving task. The payload is a
    /// sequence over the packet's buffer: read in place when it is one segment, otherwise copied into a
    /// pooled buffer for the call.
    /// </summary>
    private Task OnMessage(IMqttClient client, MqttApplicationMessageReceivedEventArgs e)
    {
        e.AutoAcknowledge = false;
        if (!ReferenceEquals(client, Volatile.Read(ref _client)) || MessageReceived is not { } handler) return Task.CompletedTask;
        byte[]? rented = null;
        try
        {
            var message = e.ApplicationMessage;
            var topic = _topics.Get(message.Topic.AsSpan());
            var payload = message.Payload;
            ReadOnlySpan<byte> bytes;
            if (payload.IsSingleSegment)
            {
                bytes = payload.FirstSpan;
            }
            else
            {
                int length = checked((int)payload.Length);
                rented = ArrayPool<byte>.Shared.Rent(length);
                payload.CopyTo(rented);
                bytes = rented.AsSpan(0, length);
            }
            handler(new MqttIncoming(topic, bytes, (int)message.QualityOfServiceLevel, message.Retain, e.PacketIdentifier, e, message.Dup));
        }
        catch (Exception ex)
        {
            // Not acknowledged: the broker delivers it again on the next connection.
            Fault("message", ex);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
        return Task.CompletedTask;
    }

    private void Fault(string callback, Exception e)
    {
        _lastCallbackFault = $"{callback} callback: {e.GetType().Name}: {e.Message}";
        Interlocked.Increment(ref _callbackFaults);
    }

    private MqttClientOptions BuildOptions(MqttProtocol protocol)
    {
        var o = _options;
        bool v5 = protocol == MqttProtocol.V5;
        var builder = new MqttClientOptionsBuilder()
            .WithClientId(o.ClientId)
            .WithProtocolVersion(v5 ? MQTTnet.Formatter.MqttProtocolVersion.V500 : MQTTnet.Formatter.MqttProtocolVersion.V311)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(Math.Max(5, o.KeepAliveSeconds)))
            .WithTimeout(TimeSpan.FromSeconds(Math.Max(10, o.KeepAliveSeconds)))
            // The broker answers what it supports; the client does not pre-judge.
            .WithTcpServer(_host, _port);
        // MQTT 5: clean start and a session expiry; 3.1.1: the clean-session flag.
        builder = v5 ? builder.WithCleanStart(o.CleanSession) : builder.WithCleanSession(o.CleanSession);
        if (v5 && !o.CleanSession && o.SessionExpirySeconds > 0) builder = builder.WithSessionExpiryInterval(o.SessionExpirySeconds);
        if (v5 && o.MaxInflight > 0) builder = builder.WithReceiveMaximum((ushort)Math.Min(o.MaxInflight, 65535));
        if (!string.IsNullOrEmpty(o.Username)) builder = builder.WithCredentials(o.Username, o.Password);
        if (_useTls) builder = builder.WithTlsOptions(TlsOptions());
        var options = builder.Build();
        options.ValidateFeatures = false;
        var tcp = (MqttClientTcpOptions)options.ChannelOptions;
        tcp.NoDelay = true;
        tcp.BufferSize = o.SocketBufferBytes;
        return options;
    }

    private MqttClientTlsOptions TlsOptions()
    {
        var tls = _options.Tls;
        if (!string.IsNullOrEmpty(tls.CaFile) && _caCertificates is null)
        {
            var ca = new X509Certificate2Collection();
            ca.ImportFromPemFile(tls.CaFile);
            if (ca.Count == 0) throw new ArgumentException($"'{tls.CaFile}' holds no PEM certificate (CaFile)");
            _caCertificates = ca;
        }
        if (!string.IsNullOrEmpty(tls.CertFile) && _clientCertificate is null)
            _clientCertificate = X509Certificate2.CreateFromPemFile(tls.CertFile, string.IsNullOrEmpty(tls.KeyFile) ? null : tls.KeyFile);
        var options = new MqttClientTlsOptions
        {
            UseTls = true,
            TargetHost = _host,
            // The CA file (or the system store) decides; no revocation lists.
            RevocationMode = X509RevocationMode.NoCheck,
            CertificateValidationHandler = e => Validate(e.Certificate, e.Chain, e.SslPolicyErrors),
        };
        if (_clientCertificate is { } certificate) options.ClientCertificatesProvider = new Certificates(certificate);
        return options;
    }

    /// <summary>The broker's certificate must chain to the CA file (or the system's CAs without one) and,
    /// unless Tls:Insecure, name the host.</summary>
    private bool Validate(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null) return false;
        bool insecure = _options.Tls.Insecure;
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 && !insecure) return false;
        if (_caCertificates is not { } ca) return (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0;
        using var own = new X509Chain();
        own.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        own.ChainPolicy.CustomTrustStore.AddRange(ca);
        own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
            foreach (var element in chain.ChainElements) own.ChainPolicy.ExtraStore.Add(element.Certificate);
        return own.Build(certificate as X509Certificate2 ?? new X509Certificate2(certificate));
    }

    private sealed class Certificates(X509Certificate2 certificate) : IMqttClientCertificatesProvider
    {
        public X509CertificateCollection GetCertificates() => new X509Certificate2Collection(certificate);
    }

    private static string Describe(Exception e)
    {
        // MQTTnet wraps the socket's error; the innermost message names the real cause (refused, timed out, TLS).
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        return ReferenceEquals(inner, e) ? e.Message : $"{e.Message} ({inner.Message})";
    }

    /// <summary>MQTT 5 reason codes (CONNACK, SUBACK, DISCONNECT) as text.</summary>
    internal static string DescribeReason(int code) => code switch
    {
        0 => "success",
        4 => "disconnect with will message",
        128 => "unspecified error",
        129 => "malformed packet",
        130 => "protocol error",
        131 => "implementation specific error",
        132 => "unsupported protocol version",
        133 => "client identifier not valid",
        134 => "bad user name or password",
        135 => "not authorized",
        136 => "server unavailable",
        137 => "server busy",
        138 => "banned",
        139 => "server shutting down",
        140 => "bad authentication method",
        141 => "keep alive timeout",
        142 => "session taken over",
        143 => "topic filter invalid",
        144 => "topic name invalid",
        145 => "packet identifier in use",
        147 => "receive maximum exceeded",
        149 => "packet too large",
        151 => "quota exceeded",
        152 => "administrative action",
        153 => "payload format invalid",
        158 => "shared subscriptions not supported",
        159 => "connection rate exceeded",
        160 => "maximum connect time",
        161 => "subscription identifiers not supported",
        162 => "wildcard subscriptions not supported",
        _ => $"reason code {code}",
    };
}
