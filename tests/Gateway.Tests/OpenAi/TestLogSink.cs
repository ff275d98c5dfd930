using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>An in-memory logger provider: what a test server logged, to assert that internal errors are logged.</summary>
public sealed class TestLogSink : ILoggerProvider
{
    public sealed record Entry(LogLevel Level, string Category, string Message, Exception? Exception);

    public ConcurrentQueue<Entry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    /// <summary>Errors logged with an exception of type <typeparamref name="T"/> (or wrapping one).</summary>
    public IEnumerable<Entry> ErrorsWith<T>() where T : Exception =>
        Entries.Where(e => e.Level >= LogLevel.Error && (e.Exception is T || e.Exception?.InnerException is T));

    private sealed class Logger(TestLogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) sink.Entries.Enqueue(new Entry(logLevel, category, formatter(state, exception), exception));
        }
    }
}
