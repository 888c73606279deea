using System.CommandLine;
using CityGateway.Simulators;

namespace CityGateway.Benchmarks.E2e;

/// <summary>One message as published: topic and payload bytes.</summary>
internal readonly record struct BenchMessage(string Topic, byte[] Payload);

/// <summary>
/// The publisher load, the same for every case: a fleet of flat-JSON devices of the three domains
/// (the simulator's devices and payloads), a warm-up set and the measured set. Message k of a set
/// is stamped start + k ms, devices in turn, so no two messages of one device share a timestamp
/// (InfluxDB would keep one point of two) and every count can be checked exactly. Values depend
/// on the seed alone, so the parent and the publisher process generate identical messages.
/// </summary>
internal sealed class Workload
{
    /// <summary>Daily profiles evaluated at a fixed instant: values depend on the seed only.</summary>
    private static readonly DateTimeOffset CurveTime = new(2024, 5, 14, 8, 15, 0, TimeSpan.Zero);

    public required int Devices { get; init; }

    public required int Messages { get; init; }

    public required int Warmup { get; init; }

    public required int Seed { get; init; }

    /// <summary>Device timestamp of the first measured message, Unix ms.</summary>
    public required long MainStartMs { get; init; }

    /// <summary>Device timestamp of the first warm-up message, Unix ms (before the measured set).</summary>
    public required long WarmStartMs { get; init; }

    public long MainStartNs => MainStartMs * 1_000_000;

    /// <summary>Timestamps well inside the gateway's accepted window (7 days old to 5 minutes ahead).</summary>
    public static Workload Create(int devices, int messages, int warmup, int seed)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long mainStart = now - messages - 120_000;
        return new Workload
        {
            Devices = devices, Messages = messages, Warmup = warmup, Seed = seed,
            MainStartMs = mainStart,
            WarmStartMs = mainStart - warmup - 60_000,
        };
    }

    public SimulatorOptions FleetOptions()
    {
        int each = Devices / 3;
        return new SimulatorOptions
        {
            TrafficDevices = each + (Devices % 3 > 0 ? 1 : 0),
            WaterDevices = each + (Devices % 3 > 1 ? 1 : 0),
            EnvironmentDevices = each,
            Formats = ["json"],
            Seed = Seed,
            Rate = 0,
            CurveTime = CurveTime,
        };
    }

    public BenchMessage[] WarmupSet() => Generate(WarmStartMs, Warmup);

    public BenchMessage[] MainSet() => Generate(MainStartMs, Messages);

    private BenchMessage[] Generate(long startMs, int count)
    {
        var result = new BenchMessage[count];
        int i = 0;
        foreach (var m in FleetSimulator.Generate(FleetOptions(), DateTimeOffset.FromUnixTimeMilliseconds(startMs), TimeSpan.FromMilliseconds(1)))
        {
            if (i == count) break;
            result[i++] = new BenchMessage(m.Topic, m.Payload);
        }
        return result;
    }

    /// <summary>Arguments that let the publisher process rebuild exactly this workload.</summary>
    public IEnumerable<string> Arguments() =>
    [
        "--devices", Devices.ToString(), "--messages", Messages.ToString(), "--warmup", Warmup.ToString(),
        "--seed", Seed.ToString(), "--main-start-ms", MainStartMs.ToString(), "--warm-start-ms", WarmStartMs.ToString(),
    ];

    public static Workload FromArguments(ParseResult args) => new()
    {
        Devices = args.GetValue<int>("--devices"),
        Messages = args.GetValue<int>("--messages"),
        Warmup = args.GetValue<int>("--warmup"),
        Seed = args.GetValue<int>("--seed"),
        MainStartMs = args.GetValue<long>("--main-start-ms"),
        WarmStartMs = args.GetValue<long>("--warm-start-ms"),
    };
}
