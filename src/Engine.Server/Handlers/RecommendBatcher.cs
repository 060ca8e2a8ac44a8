using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>
/// A ranking that answers many Recommends with one pass over the catalog (one index scan for the
/// whole batch reads every product vector once instead of once per request).
/// </summary>
public interface IBatchRecommendHandler
{
    /// <summary>
    /// Answers <paramref name="requests"/> (already validated: k in 1..1000), result i for request i.
    /// Called from one batcher worker at a time per worker; may throw
    /// <see cref="Protocol.ProtocolException"/>, which fails every request of the batch with that code.
    /// </summary>
    RecommendResult[] RecommendBatch(IReadOnlyList<RecommendRequest> requests);
}

/// <summary>Limits of a <see cref="RecommendBatcher"/>.</summary>
public sealed record RecommendBatcherOptions
{
    /// <summary>Most requests served by one scan.</summary>
    public int MaxBatch { get; init; } = 64;

    /// <summary>Requests waiting for a scan; one more is answered Overloaded.</summary>
    public int MaxQueue { get; init; } = 1024;

    /// <summary>
    /// Scans run at once. A scan usually spreads over the CPU's threads itself, so one worker keeps the
    /// cores for it; requests that arrive while it runs form the next batch.
    /// </summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// How long a worker that found fewer than <see cref="MaxBatch"/> requests waits for more before
    /// scanning. Zero (the default) adds no latency at low load: batches then form only from requests
    /// that arrive while a scan runs, which is exactly when batching pays.
    /// </summary>
    public TimeSpan Window { get; init; } = TimeSpan.Zero;

    /// <summary>Retry delay suggested to clients refused for a full queue.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentException($"max batch must be ≥ 1, found {MaxBatch}");
        if (MaxQueue < 1) throw new ArgumentException($"max queue must be ≥ 1, found {MaxQueue}");
        if (Workers < 1) throw new ArgumentException($"workers must be ≥ 1, found {Workers}");
        if (Window < TimeSpan.Zero) throw new ArgumentException($"window must be ≥ 0, found {Window}");
    }
}

/// <summary>
/// Micro-batching in front of an <see cref="IBatchRecommendHandler"/>: concurrent Recommends (from
/// any connections) queue here, and each worker takes every request waiting (up to
/// <see cref="RecommendBatcherOptions.MaxBatch"/>) into one <see cref="IBatchRecommendHandler.RecommendBatch"/>
/// call. Under load requests pile up while a scan runs and the next scan serves them all, so the
/// catalog is read once per batch rather than once per request. The queue is bounded: past
/// <see cref="RecommendBatcherOptions.MaxQueue"/> waiting requests a Recommend gets
/// <see cref="ServerOverloadedException"/> (the Overloaded frame). A request cancelled or past its
/// deadline while queued is dropped before its scan.
/// </summary>
public sealed class RecommendBatcher : IRecommendHandler, IStatsSource, IAsyncDisposable
{
    private readonly IBatchRecommendHandler _inner;
    private readonly RecommendBatcherOptions _options;
    private readonly Queue<Pending> _queue = new();   // guarded by itself
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Task[] _workers;
    private readonly CancellationTokenSource _stop = new();
    private long _requests, _batches, _rejected, _largestBatch;

    /// <summary>Starts the workers.</summary>
    public RecommendBatcher(IBatchRecommendHandler inner, RecommendBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _options = options ?? new RecommendBatcherOptions();
        _options.Validate();
        _workers = new Task[_options.Workers];
        for (int i = 0; i < _workers.Length; i++)
            _workers[i] = Task.Factory.StartNew(WorkLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Requests answered by a scan since start.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Scans (<see cref="IBatchRecommendHandler.RecommendBatch"/> calls) since start.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Requests refused as overloaded since start.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>The most requests one scan served.</summary>
    public long LargestBatch => Interlocked.Read(ref _largestBatch);

    /// <summary>Requests waiting now.</summary>
    public int Queued
    {
        get { lock (_queue) return _queue.Count; }
    }

    /// <inheritdoc/>
    public ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        cancellationToken.ThrowIfCancellationRequested();
        var pending = new Pending(request, cancellationToken);
        lock (_queue)
        {
            if (_queue.Count >= _options.MaxQueue)
            {
                Interlocked.Increment(ref _rejected);
                throw new ServerOverloadedException($"recommend full: {_options.MaxQueue} requests waiting for a scan", _options.RetryAfter);
            }
            _queue.Enqueue(pending);
        }
        _signal.Release();
        return new ValueTask<RecommendResult>(pending.Completion.Task);
    }

    private void WorkLoop()
    {
        var batch = new List<Pending>(_options.MaxBatch);
        var requests = new List<RecommendRequest>(_options.MaxBatch);
        while (true)
        {
            try { _signal.Wait(_stop.Token); }
            catch (OperationCanceledException) { break; }
            if (_options.Window > TimeSpan.Zero && Queued < _options.MaxBatch) Thread.Sleep(_options.Window);

            // This wake-up's request plus whatever else waits: each taken request consumes its own signal
            // count (TryWait below), so counts and queue stay in step across workers.
            batch.Clear();
            lock (_queue)
            {
                while (batch.Count < _options.MaxBatch && _queue.TryDequeue(out Pending? p)) batch.Add(p);
            }
            for (int i = 1; i < batch.Count; i++) _signal.Wait(0);
            Serve(batch, requests);
        }
        // Stopping: nothing more is scanned.
        lock (_queue)
        {
            while (_queue.TryDequeue(out Pending? p)) { p.Completion.TrySetException(new ServerOverloadedException("recommend stopping", _options.RetryAfter)); p.Release(); }
        }
    }

    private void Serve(List<Pending> batch, List<RecommendRequest> requests)
    {
        requests.Clear();
        int live = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            Pending p = batch[i];
            if (p.Token.IsCancellationRequested) { p.Completion.TrySetCanceled(p.Token); p.Release(); continue; }
            batch[live++] = p;
            requests.Add(p.Request);
        }
        batch.RemoveRange(live, batch.Count - live);
        if (live == 0) return;

        RecommendResult[] results;
        try
        {
            results = _inner.RecommendBatch(requests);
            if (results.Length != live) throw new InvalidOperationException($"the ranking answered {results.Length} results for {live} requests");
        }
        catch (Exception e)
        {
            foreach (Pending p in batch) { p.Completion.TrySetException(e); p.Release(); }
            return;
        }
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _requests, live);
        long largest;
        while (live > (largest = Interlocked.Read(ref _largestBatch)) && Interlocked.CompareExchange(ref _largestBatch, live, largest) != largest) { }
        for (int i = 0; i < live; i++) { batch[i].Completion.TrySetResult(results[i]); batch[i].Release(); }
    }

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "recommend.requests", Value = Requests });
        entries.Add(new StatEntry { Name = "recommend.scans", Value = Batches });
        entries.Add(new StatEntry { Name = "recommend.largest_batch", Value = LargestBatch });
        entries.Add(new StatEntry { Name = "recommend.rejected", Value = Rejected });
        entries.Add(new StatEntry { Name = "recommend.queued", Value = Queued });
    }

    /// <summary>Stops the workers after their current scan; requests still queued get Overloaded.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        await Task.WhenAll(_workers).ConfigureAwait(false);
        _stop.Dispose();
        _signal.Dispose();
    }

    /// <summary>A queued request. Cancelling its token answers the caller at once; its scan then skips it.</summary>
    private sealed class Pending
    {
        private readonly CancellationTokenRegistration _registration;

        public Pending(RecommendRequest request, CancellationToken token)
        {
            Request = request;
            Token = token;
            if (token.CanBeCanceled)
                _registration = token.Register(static s => ((Pending)s!).Cancel(), this);
        }

        public RecommendRequest Request { get; }
        public CancellationToken Token { get; }
        public TaskCompletionSource<RecommendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private void Cancel() => Completion.TrySetCanceled(Token);

        /// <summary>Ends the wait for the token (after the result or error is set).</summary>
        public void Release() => _registration.Dispose();
    }
}
