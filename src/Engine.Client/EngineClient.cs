using System.Runtime.CompilerServices;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Client;

/// <summary>
/// The storefront SDK. One connection multiplexes every concurrent call (each gets its own stream
/// id); a lost connection is re-opened on the next call with exponential backoff and jitter;
/// a cancelled token removes the call and sends Cancel to the server. Thread-safe.
/// </summary>
public sealed class EngineClient : IAsyncDisposable
{
    private readonly EngineClientOptions _options;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private ClientConnection? _connection;
    private bool _disposed;

    /// <summary>Creates a client; the connection opens on first use (or call <see cref="ConnectAsync(CancellationToken)"/>).</summary>
    public EngineClient(EngineClientOptions options) => _options = options;

    /// <summary>Creates a client and opens its connection.</summary>
    public static async Task<EngineClient> ConnectAsync(EngineClientOptions options, CancellationToken cancellationToken = default)
    {
        var client = new EngineClient(options);
        await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        return client;
    }

    /// <summary>The server's handshake answer on the current connection (null before connecting).</summary>
    public HelloOk? Server => _connection?.Hello;

    /// <summary>Opens the connection now (with retries) if it is not open.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default) => await GetConnectionAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Ranks products for a shopper.</summary>
    public Task<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken = default) =>
        UnaryAsync<RecommendRequest, RecommendResult>(Opcode.Recommend, Opcode.RecommendResult, WithDefaultTimeout(request), cancellationToken);

    /// <summary>Streams generated text, piece by piece. A failure mid-stream throws from the enumeration.</summary>
    public async IAsyncEnumerable<string> GenerateAsync(GenerateRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        request.Stream = true;
        ClientConnection connection = await GetConnectionAsync(cancellationToken).ConfigureAwait(false);
        var call = new GenerateCall();
        uint id = connection.Register(call);
        using CancellationTokenRegistration registration = cancellationToken.Register(() =>
        {
            connection.Cancel(id);
            call.Fail(new OperationCanceledException(cancellationToken));
        });
        try
        {
            await connection.SendAsync(Opcode.Generate, id, WithDefaultTimeout(request), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            connection.Forget(id);
            throw;
        }
        try
        {
            await foreach (string piece in call.Pieces.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
                yield return piece;
            await call.Done.ConfigureAwait(false);
        }
        finally
        {
            // The caller stopped enumerating early: stop the server's work too.
            if (!call.Done.IsCompleted) connection.Cancel(id);
        }
    }

    /// <summary>Generates without streaming: returns the whole text and its attribution.</summary>
    public Task<GenerateDone> GenerateTextAsync(GenerateRequest request, CancellationToken cancellationToken = default)
    {
        request.Stream = false;
        return UnaryAsync<GenerateRequest, GenerateDone>(Opcode.Generate, Opcode.GenerateDone, WithDefaultTimeout(request), cancellationToken);
    }

    /// <summary>Sends events in order, in batches of <see cref="EngineClientOptions.EventBatchSize"/>; returns how many the server acknowledged.</summary>
    public async Task<int> SendEventsAsync(IEnumerable<ShopperEvent> events, CancellationToken cancellationToken = default)
    {
        int accepted = 0;
        foreach (ShopperEvent[] chunk in events.Chunk(Math.Max(1, _options.EventBatchSize)))
        {
            var ack = await UnaryAsync<EventBatch, EventsAck>(Opcode.Events, Opcode.EventsAck,
                new EventBatch { TimeoutMs = _options.DefaultTimeoutMs, Events = chunk }, cancellationToken).ConfigureAwait(false);
            accepted += ack.Accepted;
        }
        return accepted;
    }

    /// <summary>Inserts or replaces catalog products (admin key).</summary>
    public Task<CatalogUpsertResult> UpsertCatalogAsync(CatalogUpsertRequest request, CancellationToken cancellationToken = default) =>
        UnaryAsync<CatalogUpsertRequest, CatalogUpsertResult>(Opcode.CatalogUpsert, Opcode.CatalogUpsertResult, WithDefaultTimeout(request), cancellationToken);

    /// <summary>Runs an experiment command (admin key).</summary>
    public Task<ExperimentResult> ExperimentAsync(ExperimentCommand command, CancellationToken cancellationToken = default) =>
        UnaryAsync<ExperimentCommand, ExperimentResult>(Opcode.Experiment, Opcode.ExperimentResult, WithDefaultTimeout(command), cancellationToken);

    /// <summary>Reads one page of the logged recommendations and rewards (admin key; docs/FEEDBACK-LOG.md).</summary>
    public Task<FeedbackExportResult> ExportFeedbackAsync(FeedbackExportRequest request, CancellationToken cancellationToken = default) =>
        UnaryAsync<FeedbackExportRequest, FeedbackExportResult>(Opcode.FeedbackExport, Opcode.FeedbackExportResult, WithDefaultTimeout(request), cancellationToken);

    /// <summary>Reads the server's figures (admin key).</summary>
    public Task<StatsResult> StatsAsync(string prefix = "", CancellationToken cancellationToken = default) =>
        UnaryAsync<StatsRequest, StatsResult>(Opcode.Stats, Opcode.StatsResult, new StatsRequest { TimeoutMs = _options.DefaultTimeoutMs, Prefix = prefix }, cancellationToken);

    /// <summary>Health over this client's connection.</summary>
    public Task<HealthResult> HealthAsync(CancellationToken cancellationToken = default) =>
        UnaryAsync<HealthRequest, HealthResult>(Opcode.Health, Opcode.HealthResult, new HealthRequest { TimeoutMs = _options.DefaultTimeoutMs }, cancellationToken);

    /// <summary>Health without a key or Hello (what a load balancer probe or `engine health` does).</summary>
    public static async Task<HealthResult> ProbeHealthAsync(EngineClientOptions options, CancellationToken cancellationToken = default)
    {
        await using ClientConnection connection = await ClientConnection.OpenAsync(options, sendHello: false, cancellationToken).ConfigureAwait(false);
        return await CallAsync<HealthRequest, HealthResult>(connection, Opcode.Health, Opcode.HealthResult, new HealthRequest(), cancellationToken).ConfigureAwait(false);
    }

    private T WithDefaultTimeout<T>(T request) where T : IRequestBody
    {
        if (request.TimeoutMs == 0) request.TimeoutMs = _options.DefaultTimeoutMs;
        return request;
    }

    private async Task<TResult> UnaryAsync<TRequest, TResult>(Opcode opcode, Opcode answer, TRequest request, CancellationToken cancellationToken)
        where TResult : class
    {
        ClientConnection connection = await GetConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await CallAsync<TRequest, TResult>(connection, opcode, answer, request, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<TResult> CallAsync<TRequest, TResult>(ClientConnection connection, Opcode opcode, Opcode answer, TRequest request, CancellationToken cancellationToken)
        where TResult : class
    {
        var call = new UnaryCall<TResult>(answer);
        uint id = connection.Register(call);
        using CancellationTokenRegistration registration = cancellationToken.Register(() =>
        {
            connection.Cancel(id);
            call.Fail(new OperationCanceledException(cancellationToken));
        });
        try
        {
            await connection.SendAsync(opcode, id, request, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            connection.Forget(id);
            throw;
        }
        return await call.Task.ConfigureAwait(false);
    }

    private async ValueTask<ClientConnection> GetConnectionAsync(CancellationToken cancellationToken)
    {
        ClientConnection? current = _connection;
        if (current is { IsUsable: true }) return current;
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            current = _connection;
            if (current is { IsUsable: true }) return current;
            if (current is not null)
            {
                _connection = null;
                _ = current.DisposeAsync().AsTask(); // calls still in flight on a GoAway connection finish there
            }
            Exception? last = null;
            for (int attempt = 0; attempt < Math.Max(1, _options.MaxConnectAttempts); attempt++)
            {
                if (attempt > 0) await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
                try
                {
                    _connection = await ClientConnection.OpenAsync(_options, sendHello: true, cancellationToken).ConfigureAwait(false);
                    return _connection;
                }
                catch (EngineRequestException)
                {
                    throw; // refused by the server (bad key, version): retrying will not help
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    last = e;
                }
            }
            throw new EngineConnectionException($"could not connect to {_options.Host}:{_options.Port} after {_options.MaxConnectAttempts} attempts: {last?.Message}", last);
        }
        finally
        {
            _connectLock.Release();
        }
    }

    /// <summary>Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempt)].</summary>
    private TimeSpan Backoff(int attempt)
    {
        double cap = Math.Min(_options.ReconnectMaxDelay.TotalMilliseconds, _options.ReconnectBaseDelay.TotalMilliseconds * Math.Pow(2, attempt));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * cap);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _connectLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _disposed = true;
            if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
        finally
        {
            _connectLock.Release();
        }
    }
}
