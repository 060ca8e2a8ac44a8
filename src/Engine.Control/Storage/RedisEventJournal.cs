using System.Runtime.CompilerServices;
using Engine.Control.Sessions;
using Orleans.Serialization;
using StackExchange.Redis;

namespace Engine.Control.Storage;

/// <summary>The journal on Redis: one stream per customer (<c>engine-journal/{serviceId}/{customer}</c>),
/// appended by ONE Redis command per write however many customers it covers (a Lua script that XADDs
/// each entry to its customer's stream), with concurrent appends coalesced into shared writes (group
/// commit). Redis answers after the script's effects are in its append-only file (with
/// <c>appendfsync always</c>, fsynced before the reply): that answer is what the sink acknowledges on.</summary>
/// <remarks>
/// <para>Why one command per write: with <c>appendfsync always</c> redis-server fsyncs once per pass of its
/// event loop that executed a write, and it reads at most 16 KB of a client's pipeline per pass. A
/// pipeline of one XADD per customer (≈ 190 bytes each, 97 KB for 512 customers) was therefore executed
/// in 5–7 passes, i.e. 5–7 fsyncs per batch (strace on redis-server, bench/RESULTS.md), and each fsync
/// costs 2.5–8 ms on the benchmark machine's disk: the wall rate was bound by fsyncs, not CPU. A script
/// runs only once its whole command has arrived, so one write costs one fsync, and every write that
/// arrives while redis-server fsyncs is executed in the next pass and shares the next fsync.</para>
/// <para>Group commit: at most <see cref="ControlOptions.JournalWritesInFlight"/> writes are outstanding;
/// appends that arrive meanwhile wait and go out together in the next write (up to
/// <see cref="ControlOptions.JournalMaxEntriesPerWrite"/> entries), so the write size follows the load: an
/// idle silo writes each append at once, a busy one writes hundreds of customers per fsync. A failed write
/// fails every append it carried (none acknowledged); some of its entries may still be durable, which
/// replay tolerates (sessions apply by event id once).</para>
/// <para>A stream (not a list) because its ids are ordered positions that survive trimming: a session stores
/// the id it has applied and replays with XREAD after it; XTRIM MINID drops what it checkpointed,
/// idempotently. Streams are trimmed, never deleted: a deleted stream forgets its last id, and a new
/// entry in the same millisecond would get a smaller id than a session already stored. Entry value:
/// the customer's events as <c>CustomerEvent[]</c> in Orleans' binary serialization (version tolerant
/// through the <c>[Id]</c> contracts). The script's keys are all in one command, so on a Redis Cluster
/// they must share a slot: the journal expects one Redis primary (as the Orleans providers here are configured).</para>
/// </remarks>
internal sealed class RedisEventJournal : IEventJournal, IAsyncDisposable
{
    private const string Field = "e";

    /// <summary>KEYS[i] gets ARGV[i] as field <see cref="Field"/>; returns the ids in key order. Scripts
    /// are replicated (and written to the AOF) as their effects, in one MULTI/EXEC.</summary>
    private const string AppendScript =
        "local ids = {} for i = 1, #KEYS do ids[i] = redis.call('XADD', KEYS[i], '*', 'e', ARGV[i]) end return ids";

    /// <summary>KEYS[1]'s entries in [ARGV[1], ARGV[2]] (at most ARGV[3]) and whether one is at or after ARGV[4]:
    /// counted inside redis-server, so the entries never travel.</summary>
    private const string SpanScript =
        "return { #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3]), #redis.call('XRANGE', KEYS[1], ARGV[4], '+', 'COUNT', 1) }";

    /// <summary>The batched form of <see cref="SpanScript"/>: four ARGV values per key, an answer {in range, beyond} per key.</summary>
    private const string BatchedSpanScript =
        "local r = {} for i = 1, #KEYS do local a = 4 * (i - 1) " +
        "r[i] = { #redis.call('XRANGE', KEYS[i], ARGV[a + 1], ARGV[a + 2], 'COUNT', ARGV[a + 3]), #redis.call('XRANGE', KEYS[i], ARGV[a + 4], '+', 'COUNT', 1) } end return r";

    /// <summary>XTRIM MINID of each key to its ARGV, in one call (one fsync with <c>appendfsync always</c>); answers the entries dropped per key.</summary>
    private const string BatchedTrimScript =
        "local r = {} for i = 1, #KEYS do r[i] = redis.call('XTRIM', KEYS[i], 'MINID', ARGV[i]) end return r";

    private readonly ScriptBatcher? _trims, _spans; // null: each its own command (the earlier form)
    private readonly ConfigurationOptions _redis;
    private readonly Serializer _serializer;
    private readonly Lazy<Task<ConnectionMultiplexer>> _connection;
    private readonly string _prefix;
    private readonly int _maxEntries;
    private readonly CallCoalescer<Append> _appends; // appends waiting for a write slot, coalesced into writes
    private readonly bool _pipelined;
    private long _writes, _entries;

    /// <summary>A journal under <c>engine-journal/{serviceId}/</c>; at most <paramref name="writesInFlight"/>
    /// writes outstanding, each with up to <paramref name="maxEntriesPerWrite"/> entries (an append larger
    /// than that is split into several writes).</summary>
    /// <param name="redis">The store.</param>
    /// <param name="serviceId">Keys the streams: silos of one service share the journal.</param>
    /// <param name="serializer">Serializes entries.</param>
    /// <param name="writesInFlight">Writes outstanding at once (<see cref="ControlOptions.JournalWritesInFlight"/>).</param>
    /// <param name="maxEntriesPerWrite">Entries per write at most (<see cref="ControlOptions.JournalMaxEntriesPerWrite"/>).</param>
    /// <param name="pipelined">The earlier form, kept to measure against: each append at once as its own
    /// pipelined batch of one XADD per entry (no coalescing, no script).</param>
    /// <param name="batchCheckpoints">Coalesce the sessions' trims and range counts (their checkpoints' journal
    /// commands) across sessions into one script call per batch, with the same in-flight and size limits as
    /// appends (<see cref="ControlOptions.SessionCheckpointBatching"/>); false: one command each (the earlier form).</param>
    public RedisEventJournal(ConfigurationOptions redis, string serviceId, Serializer serializer, int writesInFlight = 4, int maxEntriesPerWrite = 2048,
        bool pipelined = false, bool batchCheckpoints = true)
    {
        if (batchCheckpoints)
        {
            _trims = new ScriptBatcher(BatchedTrimScript, 1, writesInFlight, maxEntriesPerWrite);
            _spans = new ScriptBatcher(BatchedSpanScript, 4, writesInFlight, maxEntriesPerWrite);
        }
        _pipelined = pipelined;
        ArgumentOutOfRangeException.ThrowIfLessThan(writesInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntriesPerWrite, 1);
        _redis = redis;
        _serializer = serializer;
        _connection = new(() => ConnectionMultiplexer.ConnectAsync(redis.Clone()));
        _prefix = $"engine-journal/{serviceId}/";
        _maxEntries = maxEntriesPerWrite;
        _appends = new CallCoalescer<Append>(writesInFlight, TakeWrite);
    }

    public string Description => $"Redis {string.Join(",", _redis.EndPoints)}";

    /// <summary>Store writes sent so far (each one script call, one fsync at most).</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Entries (customer × sink call) those writes carried: <c>EntriesWritten / Writes</c> is the mean write size.</summary>
    public long EntriesWritten => Interlocked.Read(ref _entries);

    /// <summary>Trim calls sent (each one script call for many sessions when batched), and trims they carried.</summary>
    public (long Calls, long Trims) TrimBatches => _trims is null ? (0, 0) : (_trims.Calls, _trims.Operations);

    /// <summary>Range-count calls sent when batched, and counts they carried.</summary>
    public (long Calls, long Counts) CountBatches => _spans is null ? (0, 0) : (_spans.Calls, _spans.Operations);

    private RedisKey Key(string customerId) => _prefix + customerId;

    private async Task<IDatabase> Database() => (await _connection.Value.ConfigureAwait(false)).GetDatabase();

    public async Task<JournalPosition[]> AppendAsync(IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken = default)
    {
        if (batch.Count == 0) return [];
        var db = await Database().ConfigureAwait(false);
        if (_pipelined) return await AppendPipelinedAsync(db, batch, cancellationToken).ConfigureAwait(false);
        // Serialized on the caller's thread: the writer only concatenates.
        var parts = new Append[(batch.Count + _maxEntries - 1) / _maxEntries];
        for (var p = 0; p < parts.Length; p++)
        {
            var start = p * _maxEntries;
            var count = Math.Min(_maxEntries, batch.Count - start);
            var keys = new RedisKey[count];
            var values = new RedisValue[count];
            for (var i = 0; i < count; i++)
            {
                keys[i] = Key(batch[start + i].Key);
                values[i] = _serializer.SerializeToArray(batch[start + i].Value);
            }
            parts[p] = new Append(keys, values);
        }
        // A split append's parts are queued in order and its writes started in order, so they reach Redis in order.
        _appends.Submit(parts, write => WriteOnceAsync(db, write));

        if (parts.Length == 1) return await parts[0].Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var positions = await Task.WhenAll(parts.Select(p => p.Done.Task)).WaitAsync(cancellationToken).ConfigureAwait(false);
        return positions.SelectMany(p => p).ToArray();
    }

    private async Task<JournalPosition[]> AppendPipelinedAsync(IDatabase db, IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken)
    {
        var pipeline = db.CreateBatch();
        var adds = new Task<RedisValue>[batch.Count];
        for (var i = 0; i < batch.Count; i++)
            adds[i] = pipeline.StreamAddAsync(Key(batch[i].Key), Field, _serializer.SerializeToArray(batch[i].Value));
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _entries, batch.Count);
        pipeline.Execute();
        var ids = await Task.WhenAll(adds).WaitAsync(cancellationToken).ConfigureAwait(false);
        return Array.ConvertAll(ids, id => JournalPosition.Parse(id!));
    }

    /// <summary>The queued appends one write takes (at least one; then as many as fit in <see cref="_maxEntries"/>).</summary>
    private List<Append> TakeWrite(Queue<Append> queue)
    {
        var write = new List<Append> { queue.Dequeue() };
        var entries = write[0].Keys.Length;
        while (queue.TryPeek(out var next) && entries + next.Keys.Length <= _maxEntries)
        {
            entries += next.Keys.Length;
            write.Add(queue.Dequeue());
        }
        return write;
    }

    private async Task WriteOnceAsync(IDatabase db, List<Append> write)
    {
        RedisKey[] keys;
        RedisValue[] values;
        if (write.Count == 1) (keys, values) = (write[0].Keys, write[0].Values);
        else
        {
            keys = write.SelectMany(a => a.Keys).ToArray();
            values = write.SelectMany(a => a.Values).ToArray();
        }
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _entries, keys.Length);
        try
        {
            var ids = (RedisResult[])(await db.ScriptEvaluateAsync(AppendScript, keys, values).ConfigureAwait(false))!;
            if (ids.Length != keys.Length)
                throw new InvalidDataException($"journal append script answered {ids.Length} ids for {keys.Length} entries");
            var offset = 0;
            foreach (var append in write)
            {
                var positions = new JournalPosition[append.Keys.Length];
                for (var i = 0; i < positions.Length; i++) positions[i] = JournalPosition.Parse(ids[offset + i].ToString());
                offset += positions.Length;
                append.Done.SetResult(positions);
            }
        }
        catch (Exception ex)
        {
            foreach (var append in write) append.Done.TrySetException(ex);
        }
    }

    public async Task<IReadOnlyList<JournalEntry>> ReadAsync(string customerId, JournalPosition after, int max)
    {
        var db = await Database().ConfigureAwait(false);
        var entries = await db.StreamReadAsync(Key(customerId), after.ToString(), max).ConfigureAwait(false);
        var read = new JournalEntry[entries.Length];
        for (var i = 0; i < entries.Length; i++)
        {
            var value = entries[i][Field];
            if (value.IsNull) throw new InvalidDataException($"journal entry {entries[i].Id} of customer '{customerId}' has no field '{Field}'");
            read[i] = new JournalEntry(JournalPosition.Parse(entries[i].Id!), _serializer.Deserialize<CustomerEvent[]>((byte[])value!) ?? []);
        }
        return read;
    }

    public async Task<long> CountAsync(string customerId) =>
        await (await Database().ConfigureAwait(false)).StreamLengthAsync(Key(customerId)).ConfigureAwait(false);

    public async Task<JournalSpan> CountAsync(string customerId, JournalPosition after, JournalPosition through, int limit)
    {
        var db = await Database().ConfigureAwait(false);
        // XRANGE bounds are inclusive: the range (after, through] starts at after's successor. An empty range
        // (after = through) has start > end, which XRANGE answers with nothing.
        RedisValue[] args = [after.Next.ToString(), through.ToString(), limit + 1L, through.Next.ToString()];
        var counts = (RedisResult[])(_spans is not null
            ? await _spans.RunAsync(db, Key(customerId), args).ConfigureAwait(false)
            : await db.ScriptEvaluateAsync(SpanScript, [Key(customerId)], args).ConfigureAwait(false))!;
        return new JournalSpan((long)counts[0], (long)counts[1] > 0);
    }

    public async Task TrimAsync(string customerId, JournalPosition through)
    {
        var db = await Database().ConfigureAwait(false);
        // XTRIM MINID drops ids below the threshold: the next position drops `through` itself.
        if (_trims is not null) await _trims.RunAsync(db, Key(customerId), through.Next.ToString()).ConfigureAwait(false);
        else await db.StreamTrimByMinIdAsync(Key(customerId), through.Next.ToString()).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<string> PendingCustomersAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var connection = await _connection.Value.ConfigureAwait(false);
        var db = connection.GetDatabase();
        foreach (var endpoint in connection.GetEndPoints())
        {
            var server = connection.GetServer(endpoint);
            if (server.IsReplica) continue;
            await foreach (var key in server.KeysAsync(db.Database, _prefix + "*", pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                // Trimmed streams stay (empty) so that their ids keep growing: only non-empty ones are pending.
                if (await db.StreamLengthAsync(key).ConfigureAwait(false) > 0)
                    yield return ((string)key!)[_prefix.Length..];
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated)
        {
            try { await (await _connection.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false); }
            catch (Exception) { /* never connected */ }
        }
    }

    /// <summary>One caller's entries (or a part of them) waiting for, or riding on, a write.</summary>
    private sealed class Append(RedisKey[] keys, RedisValue[] values)
    {
        public RedisKey[] Keys { get; } = keys;
        public RedisValue[] Values { get; } = values;
        public TaskCompletionSource<JournalPosition[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
