using System.Runtime.CompilerServices;
using Engine.Control.Sessions;
using Orleans.Serialization;
using StackExchange.Redis;

namespace Engine.Control.Storage;

/// <summary>The journal on Redis: one stream per customer (<c>engine-journal/{serviceId}/{customer}</c>),
/// one XADD per customer per sink batch, all of a batch's XADDs sent as one pipelined
/// <see cref="IBatch"/>. Redis answers after the commands are in its append-only file (with
/// <c>appendfsync always</c>, fsynced once per event-loop pass, so one fsync covers the batch): that
/// answer is what the sink acknowledges on.</summary>
/// <remarks>
/// A stream (not a list) because its ids are ordered positions that survive trimming: a session stores
/// the id it has applied and replays with XREAD after it; XTRIM MINID drops what it checkpointed,
/// idempotently. Streams are trimmed, never deleted: a deleted stream forgets its last id, and a new
/// entry in the same millisecond would get a smaller id than a session already stored. Entry value:
/// the customer's events as <c>CustomerEvent[]</c> in Orleans' binary serialization (version tolerant
/// through the <c>[Id]</c> contracts).
/// </remarks>
internal sealed class RedisEventJournal(ConfigurationOptions redis, string serviceId, Serializer serializer) : IEventJournal, IAsyncDisposable
{
    private const string Field = "e";
    private readonly Lazy<Task<ConnectionMultiplexer>> _connection = new(() => ConnectionMultiplexer.ConnectAsync(redis.Clone()));
    private readonly string _prefix = $"engine-journal/{serviceId}/";

    public string Description => $"Redis {string.Join(",", redis.EndPoints)}";

    private RedisKey Key(string customerId) => _prefix + customerId;

    private async Task<IDatabase> Database() => (await _connection.Value.ConfigureAwait(false)).GetDatabase();

    public async Task<JournalPosition[]> AppendAsync(IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken = default)
    {
        if (batch.Count == 0) return [];
        var db = await Database().ConfigureAwait(false);
        var pipeline = db.CreateBatch();
        var adds = new Task<RedisValue>[batch.Count];
        for (var i = 0; i < batch.Count; i++)
            adds[i] = pipeline.StreamAddAsync(Key(batch[i].Key), Field, serializer.SerializeToArray(batch[i].Value));
        pipeline.Execute();
        var ids = await Task.WhenAll(adds).WaitAsync(cancellationToken).ConfigureAwait(false);
        return Array.ConvertAll(ids, id => JournalPosition.Parse(id!));
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
            read[i] = new JournalEntry(JournalPosition.Parse(entries[i].Id!), serializer.Deserialize<CustomerEvent[]>((byte[])value!) ?? []);
        }
        return read;
    }

    public async Task TrimAsync(string customerId, JournalPosition through)
    {
        var db = await Database().ConfigureAwait(false);
        // XTRIM MINID drops ids below the threshold: the next position drops `through` itself.
        await db.StreamTrimByMinIdAsync(Key(customerId), through.Next.ToString()).ConfigureAwait(false);
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
}
