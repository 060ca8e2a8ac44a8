using System.Threading.Tasks.Sources;
using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>Limits of a <see cref="MicroBatcher{TItem, TResult}"/>.</summary>
public sealed record MicroBatcherOptions
{
    /// <summary>Most items in one batch.</summary>
    public int MaxBatch { get; init; } = 64;

    /// <summary>Items waiting for a batch; one more is refused with <see cref="ServerOverloadedException"/>.</summary>
    public int MaxQueue { get; init; } = 1024;

    /// <summary>
    /// Batches run at once. A batched scan usually spreads over the CPU's threads itself, so one worker
    /// keeps the cores for it; items that arrive while it runs form the next batch.
    /// </summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// How long a worker that found fewer than <see cref="MaxBatch"/> items waits for more before
    /// running them. Zero (the default) adds no latency at low load: batches then form only from items
    /// that arrive while a batch runs, which is exactly when batching pays.
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
/// Gathers items submitted concurrently (from any connections) into batches for one synchronous
/// batched call: each worker takes every item waiting (up to <see cref="MicroBatcherOptions.MaxBatch"/>)
/// and runs them together, so under load items pile up while a batch runs and the next call serves
/// them all. The queue is bounded: past <see cref="MicroBatcherOptions.MaxQueue"/> waiting items a
/// submission throws <see cref="ServerOverloadedException"/>. An item whose token is cancelled (client
/// cancel, deadline) while it waits is answered at once and left out of its batch.
/// </summary>
/// <typeparam name="TItem">What a caller submits.</typeparam>
/// <typeparam name="TResult">What it gets back.</typeparam>
public sealed class MicroBatcher<TItem, TResult> : IAsyncDisposable
{
    private readonly Func<IReadOnlyList<TItem>, BatchAnswer<TResult>[]> _process;
    private readonly MicroBatcherOptions _options;
    private readonly string _name;
    // Guarded by itself; idle workers wait on its monitor. A monitor rather than a SemaphoreSlim: the
    // semaphore spins (sched_yield) before it sleeps, and on a 2-core server a spinning idle worker took
    // the CPU the next request needed (perf: 6 % of the server's time at 2,000 Recommends/s).
    private readonly Queue<Pending> _queue = new();
    private readonly Stack<Pending> _spare = new(); // recycled items (guarded by itself)
    private int _idleWorkers;                          // guarded by _queue
    private bool _stopping;                            // guarded by _queue
    private readonly Task[] _workers;
    private readonly CancellationTokenSource _stop = new();
    private long _items, _batches, _rejected, _largestBatch;

    /// <summary>Starts the workers.</summary>
    /// <param name="process">The batched call: answer i for item i. Throwing fails every item of the batch.</param>
    /// <param name="options">Limits, or null for defaults.</param>
    /// <param name="name">Prefix of the stats entries and messages (e.g. "recommend").</param>
    public MicroBatcher(Func<IReadOnlyList<TItem>, BatchAnswer<TResult>[]> process, MicroBatcherOptions? options = null, string name = "batch")
    {
        ArgumentNullException.ThrowIfNull(process);
        _process = process;
        _options = options ?? new MicroBatcherOptions();
        _options.Validate();
        _name = name;
        _workers = new Task[_options.Workers];
        for (int i = 0; i < _workers.Length; i++)
            _workers[i] = Task.Factory.StartNew(WorkLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Items answered by a batch since start.</summary>
    public long Items => Interlocked.Read(ref _items);

    /// <summary>Batched calls since start.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Submissions refused as overloaded since start.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>The most items one batch served.</summary>
    public long LargestBatch => Interlocked.Read(ref _largestBatch);

    /// <summary>Items waiting now.</summary>
    public int Queued
    {
        get { lock (_queue) return _queue.Count; }
    }

    /// <summary>
    /// Queues <paramref name="item"/> for the next batch, or throws <see cref="ServerOverloadedException"/> when the queue
    /// is full. The answer is a <see cref="ValueTask{TResult}"/> over a recycled source (no task, completion source or
    /// queue entry allocated per item once warm): await it exactly once.
    /// </summary>
    public ValueTask<TResult> SubmitAsync(TItem item, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        cancellationToken.ThrowIfCancellationRequested();
        Pending pending = Rent(item, cancellationToken);
        lock (_queue)
        {
            if (_stopping)
            {
                pending.Refuse();
                throw new ServerOverloadedException($"{_name} stopping", _options.RetryAfter);
            }
            if (_queue.Count >= _options.MaxQueue)
            {
                Interlocked.Increment(ref _rejected);
                pending.Refuse();
                throw new ServerOverloadedException($"{_name} full: {_options.MaxQueue} requests waiting", _options.RetryAfter);
            }
            _queue.Enqueue(pending);
            if (_idleWorkers > 0) Monitor.Pulse(_queue);
        }
        return pending.Answer;
    }

    private Pending Rent(TItem item, CancellationToken token)
    {
        Pending? pending;
        lock (_spare) _spare.TryPop(out pending);
        pending ??= new Pending(this);
        pending.Start(item, token);
        return pending;
    }

    private void Return(Pending pending)
    {
        lock (_spare)
            if (_spare.Count < _options.MaxQueue + _options.MaxBatch * _options.Workers) _spare.Push(pending);
    }

    private void WorkLoop()
    {
        var batch = new List<Pending>(_options.MaxBatch);
        var items = new List<TItem>(_options.MaxBatch);
        while (true)
        {
            lock (_queue)
            {
                while (_queue.Count == 0 && !_stopping)
                {
                    _idleWorkers++;
                    Monitor.Wait(_queue);
                    _idleWorkers--;
                }
                if (_stopping) break;
            }
            if (_options.Window > TimeSpan.Zero && Queued < _options.MaxBatch) Thread.Sleep(_options.Window);

            // Whatever waits now, up to the maximum; another worker (if any) takes the rest.
            batch.Clear();
            lock (_queue)
            {
                while (batch.Count < _options.MaxBatch && _queue.TryDequeue(out Pending? p)) batch.Add(p);
                if (_queue.Count > 0 && _idleWorkers > 0) Monitor.Pulse(_queue);
            }
            Run(batch, items);
        }
        // Stopping: nothing more is run.
        lock (_queue)
        {
            while (_queue.TryDequeue(out Pending? p))
            {
                p.Fail(new ServerOverloadedException($"{_name} stopping", _options.RetryAfter));
                p.Release();
            }
        }
    }

    private void Run(List<Pending> batch, List<TItem> items)
    {
        items.Clear();
        int live = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            Pending p = batch[i];
            if (p.Token.IsCancellationRequested)
            {
                p.Cancel();
                p.Release();
                continue;
            }
            batch[live++] = p;
            items.Add(p.Item);
        }
        batch.RemoveRange(live, batch.Count - live);
        if (live == 0) return;

        BatchAnswer<TResult>[] answers;
        try
        {
            answers = _process(items);
            if (answers.Length != live) throw new InvalidOperationException($"the batched call answered {answers.Length} items of {live}");
        }
        catch (Exception e)
        {
            foreach (Pending p in batch)
            {
                p.Fail(e);
                p.Release();
            }
            return;
        }
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _items, live);
        long largest;
        while (live > (largest = Interlocked.Read(ref _largestBatch)) && Interlocked.CompareExchange(ref _largestBatch, live, largest) != largest) { }
        for (int i = 0; i < live; i++)
        {
            if (answers[i].Error is { } error) batch[i].Fail(error);
            else batch[i].Succeed(answers[i].Result!);
            batch[i].Release();
        }
    }

    /// <summary>Adds <c>{name}.requests</c>, <c>.scans</c>, <c>.largest_batch</c>, <c>.rejected</c>, <c>.queued</c>.</summary>
    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = _name + ".requests", Value = Items });
        entries.Add(new StatEntry { Name = _name + ".scans", Value = Batches });
        entries.Add(new StatEntry { Name = _name + ".largest_batch", Value = LargestBatch });
        entries.Add(new StatEntry { Name = _name + ".rejected", Value = Rejected });
        entries.Add(new StatEntry { Name = _name + ".queued", Value = Queued });
    }

    /// <summary>Stops the workers after their current batch; items still queued get Overloaded.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        lock (_queue)
        {
            _stopping = true;
            Monitor.PulseAll(_queue);
        }
        await Task.WhenAll(_workers).ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>
    /// A queued item and the source of its caller's answer. Cancelling its token answers the caller at once; its batch
    /// then skips it. Recycled: it goes back to the batcher's spares once both holders are done with it, the caller (its
    /// one <see cref="GetResult"/>) and the batch worker (<see cref="Release"/>, after the registration on the token is
    /// gone). The answer is set on the thread pool (the item is its own work item), so the caller's continuation never
    /// runs on a batch worker or on whatever thread cancelled the token.
    /// </summary>
    private sealed class Pending(MicroBatcher<TItem, TResult> owner) : IValueTaskSource<TResult>, IThreadPoolWorkItem
    {
        private ManualResetValueTaskSourceCore<TResult> _core; // continuations run inline in Execute (already on the pool)
        private CancellationTokenRegistration _registration;
        private int _answered; // 1 once an outcome is chosen (the first of result, failure, cancellation wins)
        private int _holders;  // caller and batch worker; at 0 the item is recycled
        private TResult? _result;
        private Exception? _error;

        public TItem Item { get; private set; } = default!;
        public CancellationToken Token { get; private set; }

        public ValueTask<TResult> Answer => new(this, _core.Version);

        public void Start(TItem item, CancellationToken token)
        {
            _core.Reset();
            _answered = 0;
            _holders = 2;
            Item = item;
            Token = token;
            if (token.CanBeCanceled)
                _registration = token.UnsafeRegister(static s => ((Pending)s!).Cancel(), this);
        }

        public void Succeed(TResult result)
        {
            if (Interlocked.Exchange(ref _answered, 1) != 0) return;
            _result = result;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Fail(Exception error)
        {
            if (Interlocked.Exchange(ref _answered, 1) != 0) return;
            _error = error;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Cancel() => Fail(new TaskCanceledException(null, null, Token)); // what a cancelled task throws, as before

        void IThreadPoolWorkItem.Execute()
        {
            // Nothing may touch this object after the core is set: the caller's continuation may recycle it.
            if (_error is { } error) _core.SetException(error);
            else _core.SetResult(_result!);
        }

        /// <summary>The batch worker is done with it (after its outcome was set, or it was skipped): stops listening to the token.</summary>
        public void Release()
        {
            _registration.Dispose(); // waits for a cancellation callback that is running
            _registration = default;
            Unhold();
        }

        /// <summary>Never queued (full or stopping): the caller gets an exception instead of the answer.</summary>
        public void Refuse()
        {
            _registration.Dispose();
            _registration = default;
            // A cancellation that won meanwhile has queued Execute: leave this one to the collector.
            if (Volatile.Read(ref _answered) == 0) Recycle();
        }

        public TResult GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                Unhold();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        private void Unhold()
        {
            if (Interlocked.Decrement(ref _holders) == 0) Recycle();
        }

        private void Recycle()
        {
            Item = default!;
            Token = default;
            _result = default;
            _error = null;
            owner.Return(this);
        }
    }
}
