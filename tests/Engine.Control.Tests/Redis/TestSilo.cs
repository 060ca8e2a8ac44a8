using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Tests.Redis;

/// <summary>A silo hosted the way `engine serve` hosts it (through <see cref="ControlSiloBuilderExtensions.UseEngineControl"/>).</summary>
internal sealed class TestSilo(IHost host) : IAsyncDisposable
{
    public IHost Host { get; } = host;
    public IGrainFactory Grains => Host.Services.GetRequiredService<IGrainFactory>();
    public IEventSink Events => Host.Services.GetRequiredService<IEventSink>();

    /// <summary>Starts a silo; <paramref name="siloPort"/> 0 picks a free port. A silo restarted on the
    /// port of a dead one declares that older incarnation dead at once instead of waiting for missed probes.
    /// <paramref name="serviceId"/> (default: the cluster id) keys grain state and the event journal: two
    /// clusters with one service id share them, as a dead cluster and its successor would.</summary>
    public static async Task<TestSilo> StartAsync(string? redis, string clusterId, ILoggerProvider? logs = null, int siloPort = 0,
        string? serviceId = null, Action<ControlOptions>? configure = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null) builder.Logging.AddProvider(logs);
        builder.UseOrleans(silo => silo.UseEngineControl(new ControlHostingOptions
        {
            Redis = redis,
            SiloPort = siloPort > 0 ? siloPort : RedisServer.FreePort(),
            GatewayPort = RedisServer.FreePort(),
            ClusterId = clusterId,
            ServiceId = serviceId ?? clusterId,
        }, o =>
        {
            o.FeedbackFlushInterval = TimeSpan.FromMilliseconds(200);
            configure?.Invoke(o);
        }));
        var host = builder.Build();
        await host.StartAsync();
        return new TestSilo(host);
    }

    public async Task StopAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Host.StopAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync(); } catch (Exception) { /* already stopped */ }
        Host.Dispose();
    }
}

/// <summary>Collects log lines (to check warnings).</summary>
internal sealed class ListLoggerProvider : ILoggerProvider
{
    public readonly System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Message)> Lines = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose() { }

    private sealed class Logger(ListLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) owner.Lines.Enqueue((logLevel, formatter(state, exception)));
        }
    }
}
