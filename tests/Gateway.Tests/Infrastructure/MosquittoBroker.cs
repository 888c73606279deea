namespace CityGateway.Tests.Infrastructure;

/// <summary>A real mosquitto broker on a free loopback port, data in a temporary folder.</summary>
public sealed class MosquittoBroker : IDisposable
{
    private readonly TempDir _dir = new("mosquitto");
    private ServiceProcess? _process;

    /// <param name="listenerSettings">Extra lines for the listener (TLS files), written right after it.</param>
    /// <param name="users">When set, anonymous clients are refused and these users may connect.</param>
    /// <param name="maxQueuedMessages">Messages the broker queues per client beyond those in flight
    /// (for a client that is away or slow, shared-subscription members included; for QoS 0, packets
    /// not yet written to the socket); more are dropped. No byte bound.</param>
    public MosquittoBroker(bool persistence = false, string listenerSettings = "", IReadOnlyDictionary<string, string>? users = null,
        int maxQueuedMessages = 1_000_000)
        : this(broker => broker.TestConfiguration(persistence, listenerSettings, users, maxQueuedMessages))
    {
    }

    private MosquittoBroker(Func<MosquittoBroker, string> configuration)
    {
        Port = ServiceProcess.FreePort();
        System.IO.File.WriteAllText(ConfigFile, configuration(this));
        Start();
    }

    /// <summary>
    /// The broker started from a configuration template of the repository (such as
    /// deploy/mosquitto/local.conf.template), its placeholders filled as deploy/run-local.sh fills
    /// them: @PORT@ a free port, @DATA@ the broker's folder (config and persistence), @USER@ the user
    /// running the tests. What the template says is what runs, nothing added.
    /// </summary>
    public static MosquittoBroker FromTemplate(string templatePath)
    {
        var template = System.IO.File.ReadAllText(templatePath);
        return new MosquittoBroker(broker => template
            .Replace("@PORT@", broker.Port.ToString())
            .Replace("@DATA@", broker.Folder)
            .Replace("@USER@", System.Environment.UserName));
    }

    private string TestConfiguration(bool persistence, string listenerSettings, IReadOnlyDictionary<string, string>? users, int maxQueuedMessages)
    {
        var auth = "allow_anonymous true";
        if (users is not null)
        {
            var passwd = _dir.File("passwd");
            System.IO.File.WriteAllText(passwd, "");
            foreach (var (user, password) in users)
            {
                using var p = ServiceProcess.Start("mosquitto_passwd", $"-b {passwd} {user} {password}", _dir.Path);
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (!p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(10);
            }
            auth = $"allow_anonymous false\npassword_file {passwd}";
        }
        return $"""
            user {System.Environment.UserName}
            listener {Port} 127.0.0.1
            {listenerSettings}
            {auth}
            persistence {(persistence ? "true" : "false")}
            persistence_location {_dir.Path}/
            autosave_interval 1
            max_queued_messages {maxQueuedMessages}
            max_queued_bytes 0
            max_inflight_messages 1000
            log_dest stderr
            log_type error
            log_type warning
            log_type notice
            log_type subscribe
            """;
    }

    private string ConfigFile => _dir.File("mosquitto.conf");

    public int Port { get; }

    public string Url => $"mqtt://127.0.0.1:{Port}";

    public string Folder => _dir.Path;

    public string Log => _process?.Output ?? "";

    /// <summary>Process id of the running broker, for reading /proc.</summary>
    public int Pid => (_process ?? throw new InvalidOperationException("not started")).Id;

    public double CpuSeconds() => (_process ?? throw new InvalidOperationException("not started")).CpuSeconds();

    /// <summary>Waits until the broker has logged the client's subscription ("ID QOS FILTER"; stderr is not buffered).</summary>
    public Task WaitForSubscriptionAsync(string clientId, string filter, TimeSpan timeout) =>
        Wait.UntilAsync(() => Log.Split('\n').Any(l => l.Contains($" {clientId} ", StringComparison.Ordinal) &&
                                                      l.TrimEnd().EndsWith(" " + filter, StringComparison.Ordinal)),
            timeout, () => $"{clientId} did not subscribe to {filter}:\n{(Log.Length > 2000 ? Log[^2000..] : Log)}");

    public void Start()
    {
        _process?.Dispose();
        _process = ServiceProcess.Start("mosquitto", $"-c {ConfigFile}", _dir.Path);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!ServiceProcess.PortOpen(Port))
        {
            if (_process.HasExited) throw new InvalidOperationException("mosquitto exited at start:\n" + _process.Output);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("mosquitto did not open its port:\n" + _process.Output);
            Thread.Sleep(20);
        }
    }

    /// <summary>Stops the broker (SIGTERM, so persistence is saved).</summary>
    public void Stop()
    {
        _process?.Terminate(TimeSpan.FromSeconds(10));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ServiceProcess.PortOpen(Port) && DateTime.UtcNow < deadline) Thread.Sleep(20);
    }

    public void Dispose()
    {
        _process?.Dispose();
        _dir.Dispose();
    }
}
