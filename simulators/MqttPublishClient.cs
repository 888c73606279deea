using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace CityGateway.Simulators;

/// <summary>How a <see cref="MqttPublishClient"/> reaches and authenticates to its broker.</summary>
public sealed class MqttPublishClientOptions
{
    /// <summary>mqtt://host:port, or mqtts://host:port for TLS (tcp://, ssl:// and tls:// are read the same way).</summary>
    public string Url { get; set; } = "mqtt://127.0.0.1:1883";

    public string ClientId { get; set; } = "city-publisher-" + Guid.NewGuid().ToString("N")[..8];

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>TLS even with an mqtt:// URL.</summary>
    public bool Tls { get; set; }

    /// <summary>CA certificate file (PEM) the broker's certificate must chain to; without it the
    /// operating system's CA store is used.</summary>
    public string? CaFile { get; set; }

    /// <summary>Client certificate and key (PEM), for brokers that authenticate clients by certificate.</summary>
    public string? CertFile { get; set; }

    public string? KeyFile { get; set; }

    /// <summary>Skip the check of the broker's host name against its certificate. For test set-ups only.</summary>
    public bool Insecure { get; set; }

    /// <summary>Most QoS 1/2 publishes sent and not yet acknowledged; further ones wait, in order,
    /// inside the client. The broker's own Receive Maximum lowers it.</summary>
    public int MaxInFlight { get; set; } = 1000;

    /// <summary>5 (falls back to 3.1.1 when the broker refuses it) or 4 for MQTT 3.1.1.</summary>
    public int ProtocolVersion { get; set; } = 5;

    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait before reconnecting after a lost connection; doubles up to <see cref="ReconnectMax"/>.</summary>
    public TimeSpan ReconnectMin { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Socket send and receive buffers. MQTTnet's 8 KiB default stalls QoS 1 under load.</summary>
    public int SocketBufferBytes { get; set; } = 256 * 1024;
}

/// <summary>Thrown when the broker answers CONNECT with a refusal (bad credentials, not authorised, ...).</summary>
public sealed class MqttConnectionRefusedException(string message) : Exception(message);

/// <summary>
/// A publishing MQTT connection on MQTTnet for the simulators, the tests and the benchmarks.
/// <see cref="TryPublish"/> is synchronous and never waits: it hands the message to MQTTnet, or
/// queues it (in order) while <see cref="MqttPublishClientOptions.MaxInFlight"/> QoS 1/2 publishes
/// are unacknowledged. <see cref="Completed"/> reports each accepted publish exactly once: when the
/// broker acknowledged it (QoS 1/2), or when it was written to the socket (QoS 0). After a lost
/// connection the client reconnects by itself with capped backoff and sends again, in their order,
/// the publishes that had not completed; until then <see cref="TryPublish"/> refuses new ones.
/// </summary>
public sealed class MqttPublishClient : IDisposable
{
    /// <summary>Reason code given to <see cref="Completed"/> for a publish MQTTnet failed for a reason
    /// other than the connection (MQTT's "unspecified error").</summary>
    public const int UnspecifiedError = 0x80;

    private readonly MqttPublishClientOptions _options;
    private readonly IMqttClient _client;
    private readonly object _gate = new();
    private readonly Queue<Pending> _waiting = new();
    private readonly List<Pending> _resend = new();
    private readonly CancellationTokenSource _stop = new();
    private MqttClientOptions _clientOptions;
    private MqttProtocolVersion _protocol;
    private long _nextSeq;
    private int _quota;
    private int _inFlight;      // QoS 1/2 handed to MQTTnet, not completed
    private int _sending;       // any QoS handed to MQTTnet, not completed
    private bool _ready;
    private bool _pumping;
    private bool _everConnected;
    private bool _reconnectNeeded;
    private bool _reconnectLoopRunning;
    private volatile bool _stopping;
    private Task? _reconnecting;
    private volatile string? _lastError;

    public MqttPublishClient(MqttPublishClientOptions options)
    {
        _options = options;
        (Host, Port, UseTls) = ParseUrl(options.Url, options.Tls);
        if (options.MaxInFlight < 1) throw new ArgumentException("MaxInFlight must be at least 1", nameof(options));
        _quota = options.MaxInFlight;
        _protocol = options.ProtocolVersion == 4 ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500;
        _clientOptions = BuildOptions();
        _client = new MqttClientFactory().CreateMqttClient();
        _client.DisconnectedAsync += OnDisconnectedAsync;
    }

    public string Host { get; }

    public int Port { get; }

    public bool UseTls { get; }

    public string Endpoint => $"{Host}:{Port}";

    /// <summary>Connected, and what a lost connection left unsent has been handed over again: new publishes are taken.</summary>
    public bool IsConnected => Volatile.Read(ref _ready);

    /// <summary>5, or 4 for MQTT 3.1.1.</summary>
    public int ProtocolVersion => _protocol == MqttProtocolVersion.V500 ? 5 : 4;

    /// <summary>The broker's Receive Maximum and <see cref="MqttPublishClientOptions.MaxInFlight"/>, whichever is lower.</summary>
    public int InFlightLimit => Volatile.Read(ref _quota);

    /// <summary>The last failure that was not the connection's (see <see cref="UnspecifiedError"/>).</summary>
    public string? LastError => _lastError;

    /// <summary>Called once per accepted publish with its state and the broker's reason code (below
    /// 0x80: accepted; 0x80 or more: refused). Runs on an MQTTnet or thread-pool thread, or inside
    /// <see cref="TryPublish"/>; it must be quick and must not publish.</summary>
    public Action<object?, int>? Completed { get; set; }

    /// <summary>Called after the client connected again by itself.</summary>
    public Action? Reconnected { get; set; }

    /// <summary>Called when an established connection is lost (not when it is closed on purpose), with the cause.</summary>
    public Action<string>? ConnectionLost { get; set; }

    /// <summary>Called when a reconnect attempt fails, with the cause and the wait before the next one.</summary>
    public Action<string, TimeSpan>? ReconnectFailed { get; set; }

    /// <summary>
    /// One connect attempt: TCP (and TLS), CONNECT, CONNACK. Throws <see cref="MqttConnectionRefusedException"/>
    /// when the broker refuses (after falling back to MQTT 3.1.1 if it refuses MQTT 5, reported
    /// through <paramref name="onFallback"/>); any other exception means the broker could not be reached
    /// (<see cref="Describe"/> words it).
    /// </summary>
    public async Task ConnectAsync(CancellationToken ct, Action? onFallback = null)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        while (true)
        {
            var result = await _client.ConnectAsync(_clientOptions, ct).ConfigureAwait(false);
            if (result.ResultCode == MqttClientConnectResultCode.Success)
            {
                OnConnected(result);
                return;
            }
            if (result.ResultCode == MqttClientConnectResultCode.UnsupportedProtocolVersion && _protocol == MqttProtocolVersion.V500)
            {
                _protocol = MqttProtocolVersion.V311;
                _clientOptions = BuildOptions();
                onFallback?.Invoke();
                continue;
            }
            throw new MqttConnectionRefusedException(DescribeConnack(result.ResultCode, result.ReasonString));
        }
    }

    /// <summary>
    /// Hands a publish to the connection, or queues it behind the in-flight bound; <paramref name="state"/>
    /// comes back through <see cref="Completed"/>. The payload is not copied: it must not change
    /// until the publish completed. False, with the reason, when the client is not connected
    /// (<paramref name="disconnected"/>) or the topic or QoS is not valid.
    /// </summary>
    public bool TryPublish(string topic, ReadOnlyMemory<byte> payload, int qos, object? state, out string? error, out bool disconnected)
    {
        disconnected = false;
        if (qos is < 0 or > 2)
        {
            error = $"QoS {qos} is not 0, 1 or 2";
            return false;
        }
        try
        {
            MqttTopicValidator.ThrowIfInvalid(topic);
        }
        catch (MqttProtocolViolationException e)
        {
            error = $"publish to '{Shorten(topic)}' refused: {e.Message}";
            return false;
        }
        var message = new MqttApplicationMessage
        {
            Topic = topic,
            Payload = new System.Buffers.ReadOnlySequence<byte>(payload),
            QualityOfServiceLevel = (MqttQualityOfServiceLevel)qos,
        };
        lock (_gate)
        {
            if (!_ready || _stopping)
            {
                error = $"not connected to {Endpoint}";
                disconnected = true;
                return false;
            }
            var p = new Pending(_nextSeq++, message, qos, state);
            if (_waiting.Count > 0 || (qos > 0 && _inFlight >= _quota)) _waiting.Enqueue(p);
            else Send(p);
        }
        error = null;
        return true;
    }

    /// <summary>Sends DISCONNECT and closes the connection; publishes not completed are dropped
    /// without a <see cref="Completed"/> call.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            _ready = false;
        }
        _stop.Cancel();
        try
        {
            if (_client.IsConnected)
                _client.DisconnectAsync(new MqttClientDisconnectOptions()).Wait(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Closing anyway: a broker that is gone cannot be told.
        }
        try { _reconnecting?.Wait(TimeSpan.FromSeconds(5)); } catch (Exception) { }
    }

    public void Dispose()
    {
        Stop();
        _client.Dispose();
        _stop.Dispose();
    }

    /// <summary>The cause of a failed connect attempt in a few words (the socket's or TLS's reason, not MQTTnet's wrapping).</summary>
    public static string Describe(Exception e)
    {
        if (e is MqttConnectionRefusedException) return e.Message;
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is SocketException s) return s.Message;
            if (x is AuthenticationException a)
                return a.Message.Contains("RemoteCertificateValidationCallback", StringComparison.Ordinal)
                    ? "TLS: the broker's certificate was not accepted (not from a trusted CA, or not for this host)"
                    : "TLS: " + (a.InnerException?.Message ?? a.Message);
        }
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        return inner.Message;
    }

    /// <summary>A CONNACK reason in words.</summary>
    public static string DescribeConnack(MqttClientConnectResultCode code, string? reason = null)
    {
        string text = code switch
        {
            MqttClientConnectResultCode.BadUserNameOrPassword => "bad user name or password",
            MqttClientConnectResultCode.NotAuthorized => "not authorised",
            MqttClientConnectResultCode.ClientIdentifierNotValid => "client identifier not valid",
            MqttClientConnectResultCode.ServerUnavailable => "server unavailable",
            MqttClientConnectResultCode.ServerBusy => "server busy",
            MqttClientConnectResultCode.Banned => "banned",
            MqttClientConnectResultCode.UnsupportedProtocolVersion => "unsupported protocol version",
            MqttClientConnectResultCode.QuotaExceeded => "quota exceeded",
            _ => code.ToString(),
        };
        return string.IsNullOrEmpty(reason) ? $"{text} (reason {(int)code})" : $"{text} (reason {(int)code}: {reason})";
    }

    internal static (string Host, int Port, bool Tls) ParseUrl(string url, bool forceTls)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            throw new FormatException($"'{url}' is not a broker URL such as mqtt://127.0.0.1:1883");
        bool tls = uri.Scheme switch
        {
            "mqtt" or "tcp" => false,
            "mqtts" or "ssl" or "tls" => true,
            _ => throw new FormatException($"scheme '{uri.Scheme}' of '{url}' is not supported; use mqtt:// or mqtts://"),
        };
        int port = uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 8883 : 1883) : uri.Port;
        return (uri.Host, port, tls || forceTls);
    }

    private MqttClientOptions BuildOptions()
    {
        var o = _options;
        // WithEndPoint first: it starts the TCP options afresh.
        var builder = new MqttClientOptionsBuilder()
            .WithEndPoint(new System.Net.DnsEndPoint(Host, Port))
            .WithTcpServer(tcp =>
            {
                tcp.BufferSize = o.SocketBufferBytes;
                tcp.NoDelay = true;
                // Over TLS, SslStream reads whole records already; in the clear the client reads
                // through a buffer of its own (see BufferedSocketStream).
                if (UseTls) tcp.TlsOptions = BuildTls();
                else tcp.StreamProvider = new BufferedSocketStreamProvider(o.SocketBufferBytes);
            })
            .WithClientId(o.ClientId)
            .WithCleanSession(true)
            .WithProtocolVersion(_protocol)
            .WithKeepAlivePeriod(o.KeepAlive)
            .WithTimeout(TimeSpan.FromSeconds(10))
            // One write per packet: header and payload in two writes cost two send calls per publish.
            .WithoutPacketFragmentation();
        if (!string.IsNullOrEmpty(o.Username)) builder.WithCredentials(o.Username, o.Password);
        return builder.Build();
    }

    private MqttClientTlsOptions BuildTls()
    {
        var o = _options;
        X509Certificate2Collection? trust = null;
        if (!string.IsNullOrEmpty(o.CaFile))
        {
            trust = new X509Certificate2Collection();
            trust.ImportFromPemFile(o.CaFile);
            if (trust.Count == 0) throw new ArgumentException($"CA file '{o.CaFile}' holds no certificate");
        }
        var tls = new MqttClientTlsOptions
        {
            UseTls = true,
            TargetHost = Host,
            RevocationMode = X509RevocationMode.NoCheck,
            CertificateValidationHandler = args => Validate(args.Certificate, args.SslPolicyErrors, trust, o.Insecure),
        };
        if (!string.IsNullOrEmpty(o.CertFile))
        {
            var cert = X509Certificate2.CreateFromPemFile(o.CertFile, string.IsNullOrEmpty(o.KeyFile) ? null : o.KeyFile);
            tls.ClientCertificatesProvider = new FixedCertificates(new X509CertificateCollection { cert });
        }
        return tls;
    }

    /// <summary>With a CA file: the broker's certificate must chain to it (and name the host, unless
    /// insecure). Without: the operating system's verdict.</summary>
    private static bool Validate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection? trust, bool insecure)
    {
        if (insecure) errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        if (trust is null || certificate is null) return errors == SslPolicyErrors.None;
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var cert = new X509Certificate2(certificate);
        return chain.Build(cert);
    }

    private void OnConnected(MqttClientConnectResult result)
    {
        int quota = Math.Min(_options.MaxInFlight, result.ReceiveMaximum is { } r && r > 0 ? r : 65535);
        bool again;
        lock (_gate)
        {
            again = _everConnected;
            _everConnected = true;
            _quota = quota;
            // What the lost connection left unacknowledged goes first, in its order; then what waited.
            if (_resend.Count > 0)
            {
                _resend.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
                var rest = _waiting.ToArray();
                _waiting.Clear();
                foreach (var p in _resend) _waiting.Enqueue(p);
                foreach (var p in rest) _waiting.Enqueue(p);
                _resend.Clear();
            }
            _reconnectNeeded = false;
            _ready = true;
            Pump();
        }
        if (again) Reconnected?.Invoke();
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        lock (_gate)
        {
            if (!e.ClientWasConnected || _stopping || !_everConnected) return Task.CompletedTask;
            _ready = false;
            _reconnectNeeded = true;
            if (!_reconnectLoopRunning)
            {
                _reconnectLoopRunning = true;
                _reconnecting = Task.Run(ReconnectLoopAsync);
            }
        }
        var cause = e.Exception is { } x ? Describe(x) : e.ReasonString is { Length: > 0 } rs ? rs : e.Reason.ToString();
        ConnectionLost?.Invoke(cause);
        return Task.CompletedTask;
    }

    /// <summary>Reconnects with capped exponential backoff while <see cref="_reconnectNeeded"/>; ends when
    /// connected (a later loss starts it again) or stopped.</summary>
    private async Task ReconnectLoopAsync()
    {
        var ct = _stop.Token;
        var delay = _options.ReconnectMin > TimeSpan.Zero ? _options.ReconnectMin : TimeSpan.FromSeconds(1);
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    if (!_reconnectNeeded || _stopping)
                    {
                        _reconnectLoopRunning = false;
                        return;
                    }
                }
                // The sends of the lost connection fail one by one: let them all land in the resend list first.
                var settle = DateTime.UtcNow + TimeSpan.FromSeconds(5);
                while (Volatile.Read(ref _sending) > 0 && DateTime.UtcNow < settle)
                    await Task.Delay(10, ct).ConfigureAwait(false);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                try
                {
                    await ConnectAsync(ct).ConfigureAwait(false);
                    delay = _options.ReconnectMin > TimeSpan.Zero ? _options.ReconnectMin : TimeSpan.FromSeconds(1);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e)
                {
                    var next = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(_options.ReconnectMax.Ticks, delay.Ticks)));
                    ReconnectFailed?.Invoke(Describe(e), next);
                    delay = next;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            lock (_gate) _reconnectLoopRunning = false;
        }
    }

    /// <summary>Sends what waits while the in-flight bound allows. Under <see cref="_gate"/>.</summary>
    private void Pump()
    {
        if (_pumping) return;
        _pumping = true;
        try
        {
            while (_ready && _waiting.TryPeek(out var p) && (p.Qos == 0 || _inFlight < _quota))
            {
                _waiting.Dequeue();
                Send(p);
            }
        }
        finally
        {
            _pumping = false;
        }
    }

    /// <summary>Hands one publish to MQTTnet. Under <see cref="_gate"/>, so publishes go out in their order.</summary>
    private void Send(Pending p)
    {
        if (p.Qos > 0) _inFlight++;
        _sending++;
        Task<MqttClientPublishResult> task;
        try
        {
            task = _client.PublishAsync(p.Message, CancellationToken.None);
        }
        catch (Exception e)
        {
            task = Task.FromException<MqttClientPublishResult>(e);
        }
        if (task.IsCompleted) OnSent(task, p);
        else task.ContinueWith(static (t, s) => { var (self, p) = ((MqttPublishClient, Pending))s!; self.OnSent(t, p); },
            (this, p), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnSent(Task<MqttClientPublishResult> task, Pending p)
    {
        int? reason = null;
        lock (_gate)
        {
            if (p.Qos > 0) _inFlight--;
            _sending--;
            if (task.IsCompletedSuccessfully)
                reason = (int)task.Result.ReasonCode;
            else if (_stopping)
            {
                // Closed on purpose: dropped.
            }
            else if (IsConnectionFault(task.Exception?.GetBaseException()))
            {
                // Sent again once connected. A failure of the connection before this one, arriving
                // when the next one is up already, is queued straight away; otherwise the
                // connection is gone: take no more until the reconnect has sent these again.
                if (_ready && _client.IsConnected) _waiting.Enqueue(p);
                else
                {
                    _ready = false;
                    _resend.Add(p);
                }
            }
            else
            {
                var e = task.Exception?.GetBaseException();
                _lastError = $"publish to '{Shorten(p.Message.Topic)}' failed: {e?.GetType().Name}: {e?.Message}";
                reason = UnspecifiedError;
            }
            Pump();
        }
        if (reason is { } r) Completed?.Invoke(p.State, r);
    }

    private bool IsConnectionFault(Exception? e) =>
        e is MqttCommunicationException or MqttClientNotConnectedException or ObjectDisposedException or OperationCanceledException
            or IOException or SocketException
        || !_client.IsConnected;

    private static string Shorten(string topic) => topic.Length <= 120 ? topic : topic[..120] + "...";

    private sealed class Pending(long seq, MqttApplicationMessage message, int qos, object? state)
    {
        public readonly long Seq = seq;
        public readonly MqttApplicationMessage Message = message;
        public readonly int Qos = qos;
        public readonly object? State = state;
    }

    private sealed class FixedCertificates(X509CertificateCollection certificates) : IMqttClientCertificatesProvider
    {
        public X509CertificateCollection GetCertificates() => certificates;
    }
}
