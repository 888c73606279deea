using CityGateway.Benchmarks;

return args.FirstOrDefault() switch
{
    "serial" => await SerialBenchmark.RunAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Gateway.Benchmarks serial [--runs N] [--lines N] [--seconds S]");
    return 2;
}
