using CityGateway.Benchmarks;

return args.FirstOrDefault() switch
{
    "serial" => await SerialBenchmark.RunAsync(args.Skip(1).ToArray()),
    "latency" => await LatencyBenchmark.RunAsync(args.Skip(1).ToArray()),
    "memory" => await MemoryBenchmark.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Gateway.Benchmarks serial  [--runs N] [--lines N] [--seconds S]
               Gateway.Benchmarks latency [--runs N] [--seconds S] [--rate MSG_PER_S] [--flush-ms MS[,MS...]] [--poll-ms MS]
               Gateway.Benchmarks memory  [--runs N] [--seconds S] [--devices N] [--active N] [--rate MSG_PER_S] [--trace]
               Gateway.Benchmarks memory  --write-registry FILE   (only write the benchmark's registry)
        """);
    return 2;
}
