using CityGateway.Benchmarks;

return args.FirstOrDefault() switch
{
    "pipeline" => PipelineBenchmark.Run(args.Skip(1).ToArray()),
    "serial" => await SerialBenchmark.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Gateway.Benchmarks pipeline [--runs N] [--ms N] [--devices N] [--format F] | serial [--runs N] [--lines N] [--seconds S]");
    return 2;
}
