using System.Net;
using Engine.Control;
using Engine.Control.Hosting;
using Orleans;
using Orleans.Hosting;
using Engine.Protocol.Messages;
using Engine.Server;
using Engine.Server.Handlers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Dashboard;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engine.Cli.Hosting;

/// <summary>
/// The `engine serve` composition: one process holding an Orleans silo of the control plane
/// (<see cref="ControlSiloBuilderExtensions.UseEngineControl"/>) and the TCP server, whose Events
/// go to the control plane through <see cref="ControlPlaneEventSink"/>. Start order: silo, then the
/// server (so no event arrives before the sink can take it); stop order: server (drains in-flight
/// requests, each still acknowledged only after the control plane answered), then the silo.
/// </summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly ControlStatsSource _stats;
    private bool _stopped;

    private ServeHost(IHost host, EngineServer server, ControlStatsSource stats)
    {
        _host = host;
        Server = server;
        _stats = stats;
    }

    /// <summary>The TCP server.</summary>
    public EngineServer Server { get; }

    /// <summary>Where the server listens (the bound port when <see cref="ServerOptions.Port"/> was 0).</summary>
    public IPEndPoint EndPoint => Server.EndPoint ?? throw new InvalidOperationException("server not listening");

    /// <summary>The silo's grains (sessions, catalog, stats).</summary>
    public IGrainFactory Grains => _host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>The control plane's event sink the server's Events end at.</summary>
    public Engine.Control.IEventSink ControlEvents => _host.Services.GetRequiredService<Engine.Control.IEventSink>();

    /// <summary>Starts the silo, then the server.</summary>
    /// <param name="server">Server options (address, port, keys, TLS).</param>
    /// <param name="handlers">Builds the server's handlers given the control-plane event sink and the
    /// control plane's stats source (the caller adds its Recommend/Generate handlers).</param>
    /// <param name="control">Clustering and storage of the silo.</param>
    /// <param name="configure">Control-plane options (flush interval, ...), or null for defaults.</param>
    /// <param name="logging">Logging setup for the silo, or null for warnings and errors on stderr.</param>
    /// <param name="cancellationToken">Cancels starting the silo.</param>
    /// <param name="dashboard">Where to serve the Orleans Dashboard over HTTP, or null for none (the
    /// default: its grain-call profiler costs time on every call).</param>
    public static Task<ServeHost> StartAsync(
        ServerOptions server,
        Func<ControlPlaneEventSink, IStatsSource, ServerHandlers> handlers,
        ControlHostingOptions control,
        Action<ControlOptions>? configure = null,
        Action<ILoggingBuilder>? logging = null,
        CancellationToken cancellationToken = default,
        IPEndPoint? dashboard = null) =>
        StartAsync(server, context => handlers(context.Events, context.ControlStats), control, configure, logging, services: null, cancellationToken, dashboard);

    /// <summary>Starts the silo, then the server, with handlers that may use the control plane's grains and assigner.</summary>
    /// <param name="server">Server options (address, port, keys, TLS).</param>
    /// <param name="handlers">Builds the server's handlers from the started control plane (<see cref="ServeContext"/>).</param>
    /// <param name="control">Clustering and storage of the silo.</param>
    /// <param name="configure">Control-plane options (flush interval, ...), or null for defaults.</param>
    /// <param name="logging">Logging setup for the silo, or null for warnings and errors on stderr.</param>
    /// <param name="services">Services registered before the control plane's own (which are added with
    /// TryAdd, so these win), e.g. an <see cref="Engine.Control.Catalog.IProductEmbeddings"/> over the ranking's index.</param>
    /// <param name="cancellationToken">Cancels starting the silo.</param>
    /// <param name="dashboard">Where to serve the Orleans Dashboard over HTTP, or null for none.</param>
    public static async Task<ServeHost> StartAsync(
        ServerOptions server,
        Func<ServeContext, ServerHandlers> handlers,
        ControlHostingOptions control,
        Action<ControlOptions>? configure = null,
        Action<ILoggingBuilder>? logging = null,
        Action<IServiceCollection>? services = null,
        CancellationToken cancellationToken = default,
        IPEndPoint? dashboard = null)
    {
        // The dashboard is ASP.NET Core endpoints: with it the silo lives in a WebApplication (Kestrel
        // on the dashboard's endpoint only), without it in a plain host.
        WebApplicationBuilder? web = dashboard is null ? null : WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        IHostApplicationBuilder builder = web is not null ? web : Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        web?.WebHost.ConfigureKestrel(k => k.Listen(dashboard!));
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else
        {
            // stdout belongs to command output; the silo's warnings (e.g. "NOT durable") go to stderr.
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        }
        services?.Invoke(builder.Services);
        builder.UseOrleans(silo =>
        {
            silo.UseEngineControl(control, configure);
            if (web is not null) silo.AddDashboard();
        });
        IHost host;
        if (web is null) host = ((HostApplicationBuilder)builder).Build();
        else
        {
            var app = web.Build();
            app.MapOrleansDashboard();
            host = app;
        }
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        EngineServer? engineServer = null;
        var sink = new ControlPlaneEventSink(host.Services.GetRequiredService<Engine.Control.IEventSink>());
        var stats = new ControlStatsSource(host.Services.GetRequiredService<IGrainFactory>(), sink);
        try
        {
            engineServer = new EngineServer(server, handlers(new ServeContext(sink, stats, host.Services.GetRequiredService<IGrainFactory>(),
                host.Services.GetRequiredService<Engine.Control.Experiments.IExperimentAssigner>())));
            await engineServer.StartAsync().ConfigureAwait(false);
            stats.Start();
            return new ServeHost(host, engineServer, stats);
        }
        catch
        {
            if (engineServer is not null) await engineServer.DisposeAsync().ConfigureAwait(false);
            await stats.DisposeAsync().ConfigureAwait(false);
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
            host.Dispose();
            throw;
        }
    }

    /// <summary>The control plane's stats as `engine stats` prints them (<see cref="ControlStats.ToJson"/>).</summary>
    public async Task<string> ControlStatsJsonAsync(bool indented = true) => ControlStats.ToJson(await ControlStats.ReadAsync(Grains).ConfigureAwait(false), indented);

    /// <summary>Stops the server (draining), then the silo.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopped) return;
        _stopped = true;
        await Server.StopAsync().ConfigureAwait(false);
        await _stats.DisposeAsync().ConfigureAwait(false);
        await _host.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); }
        finally
        {
            await Server.DisposeAsync().ConfigureAwait(false);
            _host.Dispose();
        }
    }
}

/// <summary>What the started control plane offers the server's handlers.</summary>
/// <param name="Events">The sink Events end at.</param>
/// <param name="ControlStats">The control plane's figures for Stats.</param>
/// <param name="Grains">The silo's grains (sessions for profile vectors).</param>
/// <param name="Experiments">Local experiment assignment (pushed configs, no grain call).</param>
public sealed record ServeContext(ControlPlaneEventSink Events, IStatsSource ControlStats, IGrainFactory Grains, Engine.Control.Experiments.IExperimentAssigner Experiments);

/// <summary>
/// Puts the control plane's counters into the server's Stats ("control.events_persisted",
/// "control.events_unknown_product", and the experiments with per-arm figures). Stats
/// sources are read synchronously on the server's request path, so the value is refreshed from the
/// grains in the background (every <see cref="Interval"/>) rather than read per request.
/// </summary>
internal sealed class ControlStatsSource(IGrainFactory grains, ControlPlaneEventSink sink) : IStatsSource, IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _eventsPersisted = -1;
    private volatile ExperimentStat[] _experiments = []; // latest read, replaced whole

    public void Start() => _loop = Task.Run(LoopAsync);

    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "control.events_unknown_product", Value = sink.UnknownProduct });
        long persisted = Interlocked.Read(ref _eventsPersisted);
        if (persisted >= 0) entries.Add(new StatEntry { Name = "control.events_persisted", Value = persisted });
    }

    public void CollectExperiments(ICollection<ExperimentStat> experiments)
    {
        foreach (var e in _experiments) experiments.Add(e);
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                var stats = await ControlStats.ReadAsync(grains).ConfigureAwait(false);
                _experiments = [.. stats.Experiments.Select(ExperimentStatMapping.ToWire)];
                Interlocked.Exchange(ref _eventsPersisted, stats.EventsPersisted);
            }
            catch (Exception) when (!_stop.IsCancellationRequested) { /* silo busy or stopping: keep the last value */ }
            catch (Exception) { return; }
        }
        while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        if (_loop is not null)
        {
            try { await _loop.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        _stop.Dispose();
    }
}
