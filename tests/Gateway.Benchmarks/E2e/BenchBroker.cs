using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks.E2e;

/// <summary>
/// mosquitto for the end-to-end benchmark, on a free loopback port, configured so that neither
/// QoS 0 nor QoS 1 messages are dropped for a subscriber that falls behind a publisher running
/// flat out: the queue per client (max_queued_messages, counted for QoS 0 as packets not yet
/// written to the socket) is far above the run's message count and has no byte bound
/// (max_queued_bytes 0). In flight per client: 1,000 QoS 1 messages (max_inflight_messages, which
/// is what MQTT 3.1.1 clients such as mosquitto_sub and Node-RED get; MQTT 5 clients ask for their
/// own receive maximum, the gateway's default is also 1,000), no byte bound. Subscriptions are
/// logged (to stderr, which is not buffered) so the benchmark knows when a subscriber is listening.
/// </summary>
internal sealed class BenchBroker : IDisposable
{
    private readonly TempDir _dir = new("bench-mosquitto");
    private readonly ServiceProcess _process;

    public BenchBroker(long maxQueued)
    {
        Port = ServiceProcess.FreePort();
        File.WriteAllText(_dir.File("mosquitto.conf"), $"""
            user {Environment.UserName}
            listener {Port} 127.0.0.1
            allow_anonymous true
            persistence false
            max_queued_messages {maxQueued}
            max_queued_bytes 0
            max_inflight_messages 1000
            max_inflight_bytes 0
            log_dest stderr
            log_type error
            log_type warning
            log_type notice
            log_type subscribe
            """);
        _process = ServiceProcess.Start("mosquitto", $"-c {_dir.File("mosquitto.conf")}", _dir.Path);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!ServiceProcess.PortOpen(Port))
        {
            if (_process.HasExited) throw new InvalidOperationException("mosquitto exited at start:\n" + _process.Output);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("mosquitto did not open its port:\n" + _process.Output);
            Thread.Sleep(20);
        }
    }

    public int Port { get; }

    public string Url => $"mqtt://127.0.0.1:{Port}";

    public int Pid => _process.Id;

    public double CpuSeconds() => _process.CpuSeconds();

    public string Log => _process.Output;

    /// <summary>Waits until the broker has logged the client's subscription ("ID QOS FILTER").</summary>
    public Task WaitForSubscriptionAsync(string clientId, string filter, TimeSpan timeout) =>
        Wait.UntilAsync(() => Log.Split('\n').Any(l => l.Contains($" {clientId} ", StringComparison.Ordinal) &&
                                                      l.TrimEnd().EndsWith(" " + filter, StringComparison.Ordinal)),
            timeout, () => $"{clientId} did not subscribe to {filter}:\n{Tail(Log)}");

    private static string Tail(string s) => s.Length > 2000 ? s[^2000..] : s;

    public void Dispose()
    {
        _process.Dispose();
        _dir.Dispose();
    }
}
