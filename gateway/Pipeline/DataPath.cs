using CityGateway.Storage.Influx;

namespace CityGateway.Pipeline;

/// <summary>A stage that receives frames from outside (MQTT, serial) and appends them to the journal.</summary>
public interface IFrameSource : IHostedService;

/// <summary>
/// Starts and stops the data path in its own order, whatever order the services were registered in:
/// the writer first and the sources last at start; at shutdown the sources stop taking frames before
/// any other service stops, and the pipeline drains the journal into the writer, which writes what
/// is left, after every other service (exchange, self-metrics) has stopped adding points.
/// A data-path stage that fails stops the gateway (a supervisor restarts it; the journal keeps the frames).
/// </summary>
public sealed partial class DataPath(
    IEnumerable<IFrameSource> sources,
    PipelineService pipeline,
    InfluxWriterService writer,
    IHostApplicationLifetime lifetime,
    ILogger<DataPath> logger) : IHostedLifecycleService
{
    private readonly IFrameSource[] _sources = sources.ToArray();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await writer.StartAsync(cancellationToken);
        Watch(writer, "InfluxDB writer");
        await pipeline.StartAsync(cancellationToken);
        Watch(pipeline, "pipeline");
        foreach (var source in _sources)
        {
            await source.StartAsync(cancellationToken);
            if (source is BackgroundService background) Watch(background, source.GetType().Name);
        }
    }

    /// <summary>Before any service stops: the sources stop taking frames.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        foreach (var source in _sources.Reverse()) await source.StopAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>After every other service stopped: drain the pipeline, then let the writer write what is left.</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        await pipeline.StopAsync(cancellationToken);
        await writer.StopAsync(cancellationToken);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Watch(BackgroundService service, string stage)
    {
        _ = service.ExecuteTask?.ContinueWith(t =>
        {
            if (t.IsFaulted && !lifetime.ApplicationStopping.IsCancellationRequested)
            {
                LogStageFailed(t.Exception!.GetBaseException(), stage);
                Environment.ExitCode = 70; // EX_SOFTWARE: not a clean stop
                lifetime.StopApplication();
            }
        }, TaskScheduler.Default);
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Critical, Message = "The {Stage} stopped with an unexpected error; the gateway stops so that its supervisor restarts it (frames not yet stored stay in the journal)")]
    private partial void LogStageFailed(Exception e, string stage);
}
