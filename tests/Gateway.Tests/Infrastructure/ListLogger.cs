using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CityGateway.Tests.Infrastructure;

/// <summary>Keeps every log entry, for tests that assert what was logged (event id, level, text).</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(int EventId, LogLevel Level, string Message)> _entries = new();

    public IReadOnlyList<(int EventId, LogLevel Level, string Message)> Entries => _entries.ToArray();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _entries.Enqueue((eventId.Id, logLevel, formatter(state, exception)));
}
