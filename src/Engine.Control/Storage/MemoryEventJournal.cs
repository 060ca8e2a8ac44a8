using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Engine.Control.Sessions;

namespace Engine.Control.Storage;

/// <summary>The journal of a silo with in-memory storage (one silo, nothing durable): the same
/// append / read / trim discipline as <see cref="RedisEventJournal"/>, in this process's memory, so
/// sessions behave the same; durability is moot (grain state dies with the process anyway).</summary>
internal sealed class MemoryEventJournal : IEventJournal
{
    private readonly ConcurrentDictionary<string, CustomerLog> _logs = new();

    public string Description => "in-memory (not durable)";

    public Task<JournalPosition[]> AppendAsync(IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken = default)
    {
        var positions = new JournalPosition[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var log = _logs.GetOrAdd(batch[i].Key, static _ => new CustomerLog());
            lock (log)
            {
                positions[i] = new JournalPosition(0, ++log.Last);
                log.Entries.Add(new JournalEntry(positions[i], batch[i].Value));
            }
        }
        return Task.FromResult(positions);
    }

    public Task<IReadOnlyList<JournalEntry>> ReadAsync(string customerId, JournalPosition after, int max)
    {
        if (!_logs.TryGetValue(customerId, out var log)) return Task.FromResult<IReadOnlyList<JournalEntry>>([]);
        lock (log)
        {
            // Entries are in position order: skip to the first one after `after`.
            var start = log.Entries.FindIndex(e => e.Position.CompareTo(after) > 0);
            if (start < 0) return Task.FromResult<IReadOnlyList<JournalEntry>>([]);
            return Task.FromResult<IReadOnlyList<JournalEntry>>(log.Entries.GetRange(start, Math.Min(max, log.Entries.Count - start)).ToArray());
        }
    }

    public Task<long> CountAsync(string customerId)
    {
        if (!_logs.TryGetValue(customerId, out var log)) return Task.FromResult(0L);
        lock (log) return Task.FromResult((long)log.Entries.Count);
    }

    public Task<JournalSpan> CountAsync(string customerId, JournalPosition after, JournalPosition through, int limit)
    {
        if (!_logs.TryGetValue(customerId, out var log)) return Task.FromResult(new JournalSpan(0, false));
        lock (log)
        {
            var inRange = log.Entries.Count(e => e.Position.CompareTo(after) > 0 && e.Position.CompareTo(through) <= 0);
            var beyond = log.Entries.Count > 0 && log.Entries[^1].Position.CompareTo(through) > 0;
            return Task.FromResult(new JournalSpan(Math.Min(inRange, limit + 1L), beyond));
        }
    }

    public Task TrimAsync(string customerId, JournalPosition through)
    {
        if (_logs.TryGetValue(customerId, out var log))
            lock (log) log.Entries.RemoveAll(e => e.Position.CompareTo(through) <= 0);
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<string> PendingCustomersAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask;
        foreach (var (customer, log) in _logs)
        {
            bool pending;
            lock (log) pending = log.Entries.Count > 0;
            if (pending) yield return customer;
        }
    }

    /// <summary>Entries oldest first; positions never reused (Last only grows), as a Redis stream's ids.</summary>
    private sealed class CustomerLog
    {
        public readonly List<JournalEntry> Entries = [];
        public long Last;
    }
}
