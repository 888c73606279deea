using System.Diagnostics.Metrics;
using System.Text.Json;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CityGateway.Benchmarks;

/// <summary>
/// The gateway's pipeline stage without its host: the routes of the shipped appsettings.json (plus
/// any given), a registry, and <see cref="PipelineService.Handle"/>, which routes, decodes,
/// normalises and encodes a frame exactly as the running gateway does.
/// </summary>
internal sealed class InProcessPipeline : IDisposable
{
    private readonly PipelineService _pipeline;
    private readonly Normaliser _normaliser;
    private readonly List<Reading> _readings = new(32);
    private readonly List<Point> _points = new(8);
    private readonly List<Rejection> _rejections = new(8);
    // The gateway's counters come from a meter factory, as in the host.
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public InProcessPipeline(DeviceRegistryFile registryFile, string quarantinePath, params TopicRoute[] extraRoutes)
    {
        var registry = DeviceRegistry.Build(registryFile, "benchmark");
        Quarantine = new QuarantineStore(Options.Create(new QuarantineOptions { Path = quarantinePath }), NullLogger<QuarantineStore>.Instance);
        var channels = new WriterQueues();
        Lines = channels.Lines;
        _normaliser = new Normaliser(() => registry, new NormalisationOptions());
        _pipeline = new PipelineService(new MemoryFrameLog(16), channels, new RouteTable([.. GatewayRoutes(), .. extraRoutes], new DecoderCatalog()),
            _normaliser, Quarantine, new GatewayMetrics(_meters.GetRequiredService<IMeterFactory>()), Options.Create(new PipelineOptions()),
            Options.Create(new JournalOptions()), new GatewayClock(TimeProvider.System), new StringPool(StringPool.ProcessCapacity), NullLogger<PipelineService>.Instance);
    }

    public QuarantineStore Quarantine { get; }

    /// <summary>Where the lines are encoded; release them once written, as the writer does.</summary>
    public LineArena Lines { get; }

    /// <summary>The frame's points as line protocol, replacing the contents of <paramref name="lines"/>:
    /// the pipeline's own <see cref="PipelineService.Handle"/>, then the encoding that
    /// <see cref="WriterQueues.AddFrameAsync"/> does, then recycling the points as the pipeline does.</summary>
    public void Handle(RawFrame frame, List<EncodedPoint> lines)
    {
        lines.Clear();
        _pipeline.Handle(frame, _readings, _points, _rejections);
        foreach (var p in _points) lines.Add(Lines.Append(p));
        _normaliser.Recycle(_points);
    }

    public string QuarantineReasons => string.Join(", ", Quarantine.CountsByReason.Select(kv => $"{kv.Key} {kv.Value}"));

    /// <summary>The routes in the gateway's own appsettings.json, so the benchmarks route as shipped.</summary>
    private static List<TopicRoute> GatewayRoutes()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "appsettings.json")),
            new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var routes = doc.RootElement.GetProperty("Gateway").GetProperty("Routes");
        return routes.Deserialize<List<TopicRoute>>() ?? throw new InvalidOperationException("appsettings.json has no routes");
    }

    public void Dispose()
    {
        Quarantine.Dispose();
        _meters.Dispose();
    }
}
