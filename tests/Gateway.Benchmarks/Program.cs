using System.CommandLine;
using CityGateway.Benchmarks;
using CityGateway.Benchmarks.E2e;
using CityGateway.Cli;

// The benchmarks read their settings by option name from the parse result; the names, defaults and
// limits are all here, and --help on each benchmark lists them.
var root = CommandLineRunner.Root("Gateway.Benchmarks",
    "Benchmarks against real services on this machine (deploy/bench.sh runs them); prints medians over repeated runs.");

var pipeline = new Command("pipeline", "decode, normalise and line-protocol in process: messages per CPU second and allocations per format")
{
    Int("--runs", 7, "runs per format", min: 1),
    Int("--ms", 1_000, "milliseconds per run", min: 1),
    Int("--devices", 2_000, "registered devices", min: 1),
    CliOptions.Choice("--format", "F", "only this format (default all)", "json", "senml", "chirpstack", "tts", "kv"),
};
pipeline.SetAction(PipelineBenchmark.Run);

var serial = new Command("serial", "serial lines through the gateway: frames per second and CPU per frame")
{
    Int("--runs", 3, "runs", min: 1),
    Int("--lines", 200_000, "lines per run", min: 1),
    Int("--seconds", 15, "seconds of the paced load", min: 1),
};
serial.SetAction((r, _) => SerialBenchmark.RunAsync(r));

var e2e = new Command("e2e", "end-to-end throughput: broker alone, InfluxDB alone, the gateway, Node-RED")
{
    Int("--runs", 3, "runs per case", min: 1),
    Int("--messages", 200_000, "measured messages per run", min: 1),
    Int("--devices", 2000, "publishing devices", min: 3),
    Int("--warmup", 300_000, "warm-up messages before the measured ones", min: 0),
    QosList("--qos", [0, 1], "QoS levels to measure, comma-separated (0 and 1)"),
    WithDefault(CliOptions.Text("--cases", "abcd", "cases to run: a broker, b InfluxDB, c gateway, d Node-RED"), "abcd"),
    Int("--posters", 2, "parallel InfluxDB writers in case b", min: 1),
    Int("--batch", 5000, "points per write in case b", min: 1),
    Int("--timeout", 600, "seconds a case may take", min: 1),
    Int("--stall", 30, "seconds without progress after the publisher finished that end a case", min: 1),
    Int("--seed", 7, "random seed of the workload", min: int.MinValue),
    CliOptions.Text("--node-red-dir", "DIR", "where node-red is installed (default ~/.cache/city-gateway-bench/node-red)"),
    CliOptions.Flag("--sample", "print a sample of the stored points after case c"),
    CliOptions.Flag("--trace", "print the gateway's progress every second while a case runs"),
    CliOptions.Text("--baseline", "COMMIT", "also run case o: the gateway built from COMMIT, after each case c, with the same settings and load"),
};
e2e.SetAction((r, _) => E2eBenchmark.RunAsync(r));

// The e2e benchmark's publisher, started by the benchmark itself as a process of its own.
var publish = new Command("publish", "the e2e benchmark's publisher process (e2e starts it; not run by hand)")
{
    CliOptions.Text("--broker", "URL", "MQTT broker", required: true),
    Int("--qos", 1, "publish QoS", min: 0, max: 2),
    Int("--window", 10_000, "publishes not yet completed at once", min: 1),
    Int("--inflight", 1000, "publishes in flight at the broker", min: 1),
    Int("--devices", 2000, "publishing devices", min: 3),
    Int("--messages", 200_000, "measured messages", min: 1),
    Int("--warmup", 20_000, "warm-up messages", min: 0),
    Int("--seed", 7, "random seed of the workload", min: int.MinValue),
    CliOptions.Long("--main-start-ms", "MS", "timestamp of the first measured message", required: true),
    CliOptions.Long("--warm-start-ms", "MS", "timestamp of the first warm-up message", required: true),
};
publish.SetAction((r, _) => PublishCommand.RunAsync(r));

var latency = new Command("latency", "delay from publish to queryable in InfluxDB, per flush interval")
{
    Int("--runs", 3, "runs per flush setting", min: 1),
    Int("--seconds", 30, "measured seconds per run", min: 1),
    Int("--warmup", 5, "warm-up seconds per run", min: 0),
    Int("--rate", 5000, "messages per second", min: 1),
    Int("--markers", 20, "marker messages per second", min: 1),
    Int("--poll-ms", 25, "milliseconds between InfluxDB queries", min: 1),
    Int("--devices", 1000, "publishing devices", min: 1),
    CliOptions.Text("--flush-ms", "MS[,MS...]", "flush intervals to compare (\"default\" for the gateway's); default: the gateway's only"),
};
latency.SetAction((r, _) => LatencyBenchmark.RunAsync(r));

var memory = new Command("memory", "the gateway's resident memory with a large registry, before and during a registry reload")
{
    Int("--runs", 3, "runs", min: 1),
    Int("--seconds", 60, "seconds of steady load", min: 1),
    Int("--devices", 100_000, "registered devices", min: 1),
    Int("--active", 10_000, "devices publishing", min: 1),
    Int("--rate", 3000, "messages per second", min: 1),
    CliOptions.Flag("--trace", "print resident memory, GC heap and collections every two seconds"),
    CliOptions.Text("--write-registry", "FILE", "only write the benchmark's registry to FILE and exit"),
    CliOptions.Text("--baseline", "COMMIT", "also measure the gateway built from COMMIT, in every run after this one"),
};
memory.SetAction((r, _) => MemoryBenchmark.RunAsync(r));

var journal = new Command("journal", "the journal's Fsync policies on this disk: appends per second and append-to-durable delay")
{
    Int("--runs", 3, "runs per policy", min: 1),
    Int("--seconds", 3, "seconds per run", min: 1),
    Int("--rate", 5000, "frames per second of the paced run", min: 1),
    Int("--payload", 200, "payload bytes per frame", min: 1),
};
journal.SetAction(JournalBenchmark.Run);

var encode = new Command("encode", "line protocol: the gateway's encoder against InfluxDB.Client and InfluxDB3.Client, and which of them writes to InfluxDB 1.6")
{
    Int("--runs", 7, "runs", min: 1),
    Int("--ms", 1_000, "milliseconds per case and run", min: 1),
};
encode.SetAction((r, _) => EncodeBenchmark.RunAsync(r));

foreach (var command in new[] { pipeline, serial, e2e, publish, latency, memory, journal, encode }) root.Subcommands.Add(command);
return await CommandLineRunner.RunAsync(root, args, Console.Out, Console.Error);

static Option<int> Int(string name, int fallback, string description, int min, int max = int.MaxValue) =>
    WithDefault(CliOptions.Int(name, "N", description, min, max), fallback);

static Option<T> WithDefault<T>(Option<T> option, T fallback)
{
    option.DefaultValueFactory = _ => fallback;
    return option;
}

static Option<int[]> QosList(string name, int[] fallback, string description) => new(name)
{
    HelpName = "0,1",
    Description = description,
    DefaultValueFactory = _ => fallback,
    CustomParser = r =>
    {
        var parts = r.Tokens[0].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var levels = parts.Select(p => p switch { "0" => 0, "1" => 1, _ => -1 }).ToArray();
        if (levels.Length == 0 || levels.Contains(-1)) r.AddError($"{name} takes 0, 1 or 0,1, not '{r.Tokens[0].Value}'");
        return levels;
    },
};
