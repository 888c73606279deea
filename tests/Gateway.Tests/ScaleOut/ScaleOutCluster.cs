using System.Diagnostics;
using System.Text.Json;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.ScaleOut;

/// <summary>
/// Several gateway processes in one shared-subscription group on one broker, writing to one InfluxDB
/// database. Each instance has its own client id (the GatewayProcess default), journal and quarantine.
/// Messages are numbered: topic scale/{device}, payload {"seq":N} and deliberately no device time, so
/// each point's timestamp is the receive time and a message delivered twice would be two rows.
/// </summary>
public sealed class ScaleOutCluster : IAsyncDisposable
{
    public const int Devices = 30;

    private readonly TempDir _dir = new("scale-out");
    private long _published;

    private ScaleOutCluster(MosquittoBroker broker, InfluxServer influx, int instances, Func<int, string[]>? extra)
    {
        Broker = broker;
        Influx = influx;
        Group = "gw-" + Guid.NewGuid().ToString("N")[..6];
        Database = ServicesFixture.NewDatabase("scale");
        var registry = Registries.Write(
            Registries.Environment(Enumerable.Range(0, Devices).Select(Device).ToArray()), _dir.File("devices.json"));
        Instances = Enumerable.Range(0, instances).Select(i =>
        {
            var folder = Directory.CreateDirectory(_dir.File("instance-" + i)).FullName;
            string[] settings =
            [
                "--Gateway:Mqtt:SharedGroup=" + Group,
                "--Gateway:Routes:0:Filter=scale/+",
                "--Gateway:Routes:0:Topic=scale/{device}",
                "--Gateway:Routes:0:Format=json",
                .. extra?.Invoke(i) ?? [],
            ];
            return new GatewayProcess(broker.Url, influx.Url, Database, registry, folder, settings);
        }).ToArray();
    }

    public MosquittoBroker Broker { get; }
    public InfluxServer Influx { get; }
    public string Group { get; }
    public string Database { get; }
    public GatewayProcess[] Instances { get; }

    /// <summary>Messages handed to the publisher so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    public static string Device(int i) => $"sc-{i:D2}";

    /// <param name="extra">Further settings for instance i.</param>
    public static async Task<ScaleOutCluster> StartAsync(MosquittoBroker broker, InfluxServer influx, int instances, Func<int, string[]>? extra = null)
    {
        var cluster = new ScaleOutCluster(broker, influx, instances, extra);
        await Task.WhenAll(cluster.Instances.Select(g => g.StartAsync()));
        return cluster;
    }

    /// <summary>Publishes messages 0..count-1 at QoS 1, paced to <paramref name="rate"/> per second, then
    /// waits for every PUBACK from the broker.</summary>
    public async Task PublishAsync(int count, int rate)
    {
        using var pub = await Publisher.ConnectAsync(Broker.Url);
        var sw = Stopwatch.StartNew();
        int seq = 0;
        while (seq < count)
        {
            long due = Math.Min(count, (long)(sw.Elapsed.TotalSeconds * rate) + 1);
            for (; seq < due; seq++) pub.Publish($"scale/{Device(seq % Devices)}", $"{{\"seq\":{seq}}}");
            Interlocked.Exchange(ref _published, seq);
            await Task.Delay(5); // pacing, not waiting for a condition
        }
        await pub.FlushAsync();
    }

    /// <summary>Points stored and distinct sequence numbers among them.</summary>
    public async Task<(long Points, long Distinct)> StoredAsync()
    {
        try
        {
            var rows = await Influx.RowsAsync(Database, "SELECT count(\"seq\") AS n, count(distinct(\"seq\")) AS d FROM \"environment\"");
            return rows.Count == 0 ? (0, 0) : (rows[0]["n"].GetInt64(), rows[0]["d"].GetInt64());
        }
        catch (InvalidOperationException e) when (e.Message.Contains("database not found"))
        {
            return (0, 0);
        }
    }

    public static async Task<JsonElement> ReadyBodyAsync(GatewayProcess g) => (await g.ReadyAsync()).Body;

    /// <summary>Messages each instance has taken from the broker since its (last) start; -1 for one not running.</summary>
    public async Task<long[]> ReceivedAsync() =>
        await Task.WhenAll(Instances.Select(async g => g.Running ? (await ReadyBodyAsync(g)).GetProperty("received").GetInt64() : -1));

    /// <summary>Waits until <paramref name="expected"/> points are stored and every running instance has an empty
    /// journal and queue, so nothing is still on its way that could add a row.</summary>
    public async Task<(long Points, long Distinct)> WaitUntilStoredAsync(long expected, TimeSpan timeout)
    {
        (long Points, long Distinct) last = default;
        await Wait.UntilAsync(async () =>
        {
            last = await StoredAsync();
            if (last.Points < expected) return false;
            foreach (var g in Instances.Where(g => g.Running))
            {
                var body = await ReadyBodyAsync(g);
                if (body.GetProperty("journal").GetProperty("pending").GetInt64() != 0 || body.GetProperty("queueDepth").GetInt64() != 0)
                    return false;
            }
            last = await StoredAsync();
            return true;
        }, timeout, () => $"stored {last.Points} points ({last.Distinct} distinct) of {expected}\n" + Logs());
        return last;
    }

    public string Logs() => string.Join("\n", Instances.Select((g, i) => $"--- instance {i} ---\n{Tail(g.Log, 40)}"));

    private static string Tail(string log, int lines) => string.Join("\n", log.Split('\n').TakeLast(lines));

    public async ValueTask DisposeAsync()
    {
        foreach (var g in Instances) await g.DisposeAsync();
        _dir.Dispose();
    }
}
