using StackExchange.Redis;

namespace Engine.Control.Storage;

/// <summary>Coalesces many small per-key Redis operations of one kind (the sessions' journal trims, their
/// journal range counts) into one Lua script call per batch, as <see cref="RedisEventJournal"/> does for
/// appends: at most <c>maxInFlight</c> calls outstanding, and the operations that arrive meanwhile go out
/// together in the next call (up to <c>maxPerCall</c>). With many active shoppers each session's checkpoint
/// was its own commands (a count, a state write, a trim): thousands of small commands per second, each with
/// its client and server overhead (and, for a trim, its own fsync pass with <c>appendfsync always</c>).</summary>
/// <remarks>The script gets the batch's keys as KEYS and <c>argsPerKey</c> ARGV values per key, in key order,
/// and must answer an array with one element per key, in key order. A failed call fails every operation it
/// carried; callers retry as they would a failed single command (a trim is retried by the next checkpoint).</remarks>
internal sealed class ScriptBatcher(string script, int argsPerKey, int maxInFlight, int maxPerCall)
{
    private readonly CallCoalescer<Operation> _coalescer = new(maxInFlight, queue => TakeBatch(queue, maxPerCall));
    private long _calls, _operations;

    /// <summary>Script calls sent so far.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Operations those calls carried: <c>Operations / Calls</c> is the mean batch.</summary>
    public long Operations => Interlocked.Read(ref _operations);

    /// <summary>Runs the script's per-key operation on <paramref name="key"/> with <paramref name="args"/>
    /// (exactly <c>argsPerKey</c> values) as part of a batch; completes with that key's element of the answer.</summary>
    public Task<RedisResult> RunAsync(IDatabase db, RedisKey key, params RedisValue[] args)
    {
        if (args.Length != argsPerKey) throw new ArgumentException($"expected {argsPerKey} arguments per key, got {args.Length}", nameof(args));
        var op = new Operation(key, args);
        _coalescer.Submit([op], batch => CallOnceAsync(db, batch));
        return op.Done.Task;
    }

    /// <summary>The queued operations one call takes (at least one, at most <paramref name="maxPerCall"/>).</summary>
    private static List<Operation> TakeBatch(Queue<Operation> queue, int maxPerCall)
    {
        var batch = new List<Operation>(Math.Min(queue.Count, maxPerCall));
        while (queue.Count > 0 && batch.Count < maxPerCall) batch.Add(queue.Dequeue());
        return batch;
    }

    private async Task CallOnceAsync(IDatabase db, List<Operation> batch)
    {
        var keys = new RedisKey[batch.Count];
        var args = new RedisValue[batch.Count * argsPerKey];
        for (var i = 0; i < batch.Count; i++)
        {
            keys[i] = batch[i].Key;
            batch[i].Args.CopyTo(args, i * argsPerKey);
        }
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _operations, batch.Count);
        try
        {
            var results = (RedisResult[])(await db.ScriptEvaluateAsync(script, keys, args).ConfigureAwait(false))!;
            if (results.Length != batch.Count)
                throw new InvalidDataException($"batched script answered {results.Length} results for {batch.Count} keys");
            for (var i = 0; i < batch.Count; i++) batch[i].Done.SetResult(results[i]);
        }
        catch (Exception ex)
        {
            foreach (var op in batch) op.Done.TrySetException(ex);
        }
    }

    private sealed class Operation(RedisKey key, RedisValue[] args)
    {
        public RedisKey Key { get; } = key;
        public RedisValue[] Args { get; } = args;
        public TaskCompletionSource<RedisResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
