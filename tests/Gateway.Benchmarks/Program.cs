using CityGateway.Benchmarks;
using CityGateway.Benchmarks.E2e;

return args.FirstOrDefault() switch
{
    "pipeline" => PipelineBenchmark.Run(args.Skip(1).ToArray()),
    "serial" => await SerialBenchmark.RunAsync(args.Skip(1).ToArray()),
    "e2e" => await E2eBenchmark.RunAsync(args.Skip(1).ToArray()),
    // The e2e benchmark's publisher, started by the benchmark itself as a process of its own.
    "publish" => await PublishCommand.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Gateway.Benchmarks pipeline [--runs N] [--ms N] [--devices N] [--format F]");
    Console.Error.WriteLine("       Gateway.Benchmarks serial [--runs N] [--lines N] [--seconds S]");
    Console.Error.WriteLine("       Gateway.Benchmarks " + E2eBenchmark.Usage);
    return 2;
}
