using CityGateway.Benchmarks;
using CityGateway.Benchmarks.E2e;

return args.FirstOrDefault() switch
{
    "pipeline" => PipelineBenchmark.Run(args.Skip(1).ToArray()),
    "serial" => await SerialBenchmark.RunAsync(args.Skip(1).ToArray()),
    "e2e" => await E2eBenchmark.RunAsync(args.Skip(1).ToArray()),
    // The e2e benchmark's publisher, started by the benchmark itself as a process of its own.
    "publish" => await PublishCommand.RunAsync(args.Skip(1).ToArray()),
    "latency" => await LatencyBenchmark.RunAsync(args.Skip(1).ToArray()),
    "memory" => await MemoryBenchmark.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Gateway.Benchmarks pipeline [--runs N] [--ms N] [--devices N] [--format F]
               Gateway.Benchmarks serial  [--runs N] [--lines N] [--seconds S]
               Gateway.Benchmarks latency [--runs N] [--seconds S] [--rate MSG_PER_S] [--flush-ms MS[,MS...]] [--poll-ms MS]
               Gateway.Benchmarks memory  [--runs N] [--seconds S] [--devices N] [--active N] [--rate MSG_PER_S] [--trace]
               Gateway.Benchmarks memory  --write-registry FILE   (only write the benchmark's registry)
        """);
    Console.Error.WriteLine("       Gateway.Benchmarks " + E2eBenchmark.Usage);
    return 2;
}
