using Microsoft.Extensions.Options;

namespace CityGateway.Normalisation;

/// <summary>
/// Holds the current device registry and reloads it when the file changes. A changed file with
/// errors is refused (logged, previous registry kept), so a typo never stops ingestion.
/// </summary>
public sealed partial class RegistryHolder : BackgroundService
{
    private readonly string _path;
    private readonly ILogger<RegistryHolder> _logger;
    private volatile DeviceRegistry _current;
    private DateTime _loadedWriteTime;

    public RegistryHolder(IOptions<RegistryOptions> options, ILogger<RegistryHolder> logger)
    {
        _path = options.Value.Path;
        _logger = logger;
        _loadedWriteTime = File.GetLastWriteTimeUtc(_path);
        _current = DeviceRegistry.LoadFile(_path);
        LogLoaded(_current.Count, Path.GetFullPath(_path));
    }

    public DeviceRegistry Current => _current;

    /// <summary>Reloads now; returns an error text when the file was refused.</summary>
    public string? Reload()
    {
        try
        {
            var time = File.GetLastWriteTimeUtc(_path);
            _current = DeviceRegistry.LoadFile(_path);
            _loadedWriteTime = time;
            LogLoaded(_current.Count, Path.GetFullPath(_path));
            return null;
        }
        catch (RegistryException e)
        {
            _loadedWriteTime = File.GetLastWriteTimeUtc(_path);
            LogRefused(e.Message);
            return e.Message;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (File.Exists(_path) && File.GetLastWriteTimeUtc(_path) != _loadedWriteTime) Reload();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return; // shutdown
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Device registry loaded: {Count} devices from {Path}")]
    private partial void LogLoaded(int count, string path);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Device registry change refused, the previous registry stays in force: {Error}")]
    private partial void LogRefused(string error);
}
