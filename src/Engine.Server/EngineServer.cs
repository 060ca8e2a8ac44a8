using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Server;

/// <summary>
/// The storefront-facing server: accepts TCP (optionally TLS) connections, or in-process duplex pipes,
/// and runs a <see cref="ServerConnection"/> for each. The host wires the handlers (<see cref="ServerHandlers"/>).
/// </summary>
public sealed class EngineServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, (ServerConnection Connection, Task Run)> _connections = new();
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _nextConnectionId;
    private volatile bool _draining;
    private long _connectionsTotal, _requests, _overloaded, _framesIn, _framesOut;
    private readonly long[] _errors = new long[ushort.MaxValue + 1];

    /// <summary>Creates a server; nothing listens until <see cref="StartAsync"/>.</summary>
    public EngineServer(ServerOptions options, ServerHandlers handlers)
    {
        Options = options;
        Handlers = handlers;
        Authenticator = new ApiKeyAuthenticator(options);
    }

    /// <summary>Settings.</summary>
    public ServerOptions Options { get; }

    /// <summary>What answers each operation.</summary>
    public ServerHandlers Handlers { get; }

    internal ApiKeyAuthenticator Authenticator { get; }

    /// <summary>The endpoint being listened on (the real port when <see cref="ServerOptions.Port"/> was 0).</summary>
    public IPEndPoint? EndPoint => _listener?.LocalEndPoint as IPEndPoint;

    /// <summary>Open connections.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Binds and starts accepting.</summary>
    public Task StartAsync()
    {
        var listener = new Socket(Options.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(Options.Address, Options.Port));
        listener.Listen(512);
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(listener);
        return Task.CompletedTask;
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested) return;
                continue;
            }
            _ = RunSocketAsync(socket);
        }
    }

    private async Task RunSocketAsync(Socket socket)
    {
        socket.NoDelay = true;
        bool isLoopback = socket.RemoteEndPoint is IPEndPoint remote && IPAddress.IsLoopback(remote.Address);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            if (Options.Certificate is { } certificate)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                handshake.CancelAfter(Options.HelloTimeout);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, handshake.Token).ConfigureAwait(false);
                stream = ssl;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failed TLS handshake is a client problem: close quietly.
            await stream.DisposeAsync().ConfigureAwait(false);
            return;
        }
        var transport = new StreamTransport(stream, Options.InputPauseBytes, Options.OutputPauseBytes);
        await ServeAsync(transport, isLoopback).ConfigureAwait(false);
        await transport.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Serves one connection over <paramref name="transport"/> until it ends (in-process duplex pipes
    /// in tests; sockets go through the same path). Never throws.
    /// </summary>
    public async Task ServeAsync(IDuplexPipe transport, bool isLoopback = true)
    {
        long id = Interlocked.Increment(ref _nextConnectionId);
        var connection = new ServerConnection(this, transport, isLoopback, id);
        if (_draining)
        {
            connection.Abort();
        }
        Interlocked.Increment(ref _connectionsTotal);
        var run = connection.RunAsync();
        _connections[id] = (connection, run);
        try
        {
            await run.ConfigureAwait(false);
        }
        finally
        {
            _connections.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Graceful shutdown: stop accepting, send GoAway, let requests in flight finish within the drain
    /// timeout, cancel the rest, close every connection.
    /// </summary>
    public async Task StopAsync()
    {
        _draining = true;
        _stopping.Cancel();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        var connections = _connections.Values.ToArray();
        await Task.WhenAll(connections.Select(c => c.Connection.DrainAsync(Options.DrainTimeout))).ConfigureAwait(false);
        await Task.WhenAll(connections.Select(c => c.Run)).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (!_draining) await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    internal HealthResult Health() => new()
    {
        Status = (byte)(_draining ? HealthStatus.Draining : HealthStatus.Ok),
        ServerName = Options.ServerName,
        UptimeMs = (ulong)_uptime.ElapsedMilliseconds,
        Connections = (uint)_connections.Count,
        InFlight = (uint)_connections.Values.Sum(c => c.Connection.InFlight),
        Capabilities = (ulong)Handlers.Capabilities,
    };

    /// <summary>The name a Stats prefix is matched against for <see cref="StatsResult.Experiments"/>.</summary>
    internal const string ExperimentsName = "control.experiments";

    internal StatsResult Stats(string? prefix)
    {
        var entries = new List<StatEntry>
        {
            new() { Name = "server.connections", Value = _connections.Count },
            new() { Name = "server.connections_total", Value = Interlocked.Read(ref _connectionsTotal) },
            new() { Name = "server.requests", Value = Interlocked.Read(ref _requests) },
            new() { Name = "server.overloaded", Value = Interlocked.Read(ref _overloaded) },
            new() { Name = "server.frames_in", Value = Interlocked.Read(ref _framesIn) },
            new() { Name = "server.frames_out", Value = Interlocked.Read(ref _framesOut) },
            new() { Name = "server.uptime_ms", Value = _uptime.ElapsedMilliseconds },
        };
        foreach (ErrorCode code in Enum.GetValues<ErrorCode>())
            if (code != ErrorCode.None) entries.Add(new StatEntry { Name = $"server.errors.{code}", Value = Interlocked.Read(ref _errors[(ushort)code]) });
        foreach (var source in Handlers.StatsSources) source.Collect(entries);
        var experiments = new List<ExperimentStat>();
        if (string.IsNullOrEmpty(prefix) || ExperimentsName.StartsWith(prefix, StringComparison.Ordinal))
            foreach (var source in Handlers.StatsSources) source.CollectExperiments(experiments);
        return new StatsResult
        {
            Entries = entries.Where(e => string.IsNullOrEmpty(prefix) || e.Name.StartsWith(prefix, StringComparison.Ordinal))
                .OrderBy(e => e.Name, StringComparer.Ordinal).ToArray(),
            Experiments = [.. experiments.OrderBy(e => e.Id, StringComparer.Ordinal)],
        };
    }

    internal void CountError(ErrorCode code) => Interlocked.Increment(ref _errors[(ushort)code]);
    internal void CountOverloaded() => Interlocked.Increment(ref _overloaded);
    internal void CountRequest() => Interlocked.Increment(ref _requests);
    internal void CountFrameIn() => Interlocked.Increment(ref _framesIn);
    internal void CountFrameOut() => Interlocked.Increment(ref _framesOut);
}
