using Microsoft.Extensions.Options;

namespace CityGateway.Normalisation;

/// <summary>
/// Holds the current device registry (the union of its files) and reloads all of it when any of its
/// files changes. A change that leaves errors (in any file, a device id in two files, a file gone)
/// is refused (logged, previous registry kept), so a typo never stops ingestion.
/// </summary>
public sealed partial class RegistryHolder : BackgroundService
{
    private readonly IReadOnlyList<RegistryFile> _files;
    private readonly ILogger<RegistryHolder> _logger;
    private volatile DeviceRegistry _current;
    private DateTime[] _loadedWriteTimes;

    /// <exception cref="RegistryException">A file is refused; each failure names the file's key.</exception>
    public RegistryHolder(IOptions<RegistryOptions> options, ILogger<RegistryHolder> logger)
    {
        _files = options.Value.Files();
        _logger = logger;
        // Taken before loading: a file changed while it is read is read again on the next tick.
        _loadedWriteTimes = WriteTimes();
        _current = DeviceRegistry.LoadFiles(_files);
        LogLoaded(_current.Count, Describe());
    }

    public DeviceRegistry Current => _current;

    /// <summary>The registry's files, in the order they are read.</summary>
    public IReadOnlyList<RegistryFile> Files => _files;

    /// <summary>Reloads every file now; returns an error text when the change was refused.</summary>
    public string? Reload()
    {
        var times = WriteTimes();
        try
        {
            _current = DeviceRegistry.LoadFiles(_files);
            LogLoaded(_current.Count, Describe());
            return null;
        }
        catch (RegistryException e)
        {
            LogRefused(e.Message);
            return e.Message;
        }
        finally
        {
            _loadedWriteTimes = times;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                // A file that is gone counts as a change too: the reload is refused, naming it, once.
                if (!WriteTimes().AsSpan().SequenceEqual(_loadedWriteTimes)) Reload();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return; // shutdown
        }
    }

    /// <summary>Last write time of each file (a missing file's is the same fixed value each time).</summary>
    private DateTime[] WriteTimes()
    {
        var times = new DateTime[_files.Count];
        for (int i = 0; i < times.Length; i++) times[i] = File.GetLastWriteTimeUtc(_files[i].Path);
        return times;
    }

    private string Describe() => string.Join(", ", _files.Select(f => Path.GetFullPath(f.Path)));

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Device registry loaded: {Count} devices from {Path}")]
    private partial void LogLoaded(int count, string path);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Device registry change refused, the previous registry stays in force: {Error}")]
    private partial void LogRefused(string error);
}
