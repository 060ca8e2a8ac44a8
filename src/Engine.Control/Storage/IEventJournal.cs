using Engine.Control.Sessions;

namespace Engine.Control.Storage;

/// <summary>The silo's event journal: where an event is made durable before it is acknowledged
/// (cross-session group commit). One entry per customer per sink batch; each customer's entries are
/// read back in append order from a <see cref="JournalPosition"/> and trimmed once the customer's
/// session has checkpointed past them.</summary>
/// <remarks>The journal is the source of truth between checkpoints: a session's stored state says
/// which position it includes (<see cref="SessionState.Journal"/>), and the session replays every
/// entry after it before it answers (DESIGN: sessions, docs in <see cref="JournalEventSink"/>).</remarks>
internal interface IEventJournal
{
    /// <summary>What backs the journal, for error messages ("Redis 127.0.0.1:6379", "in-memory").</summary>
    string Description { get; }

    /// <summary>Appends each customer's events as one entry; completes once every entry is durable,
    /// with the entries' positions in input order. All entries go out as one pipelined store operation.</summary>
    Task<JournalPosition[]> AppendAsync(IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken = default);

    /// <summary>The customer's entries after <paramref name="after"/> (exclusive), oldest first, at most <paramref name="max"/>.</summary>
    Task<IReadOnlyList<JournalEntry>> ReadAsync(string customerId, JournalPosition after, int max);

    /// <summary>How many entries the customer's journal holds now (not yet trimmed). A session whose
    /// delivered-but-unread entries are all of them advances its position without reading them back.</summary>
    Task<long> CountAsync(string customerId);

    /// <summary>How many of the customer's entries lie in (<paramref name="after"/>, <paramref name="through"/>]
    /// (counted up to <paramref name="limit"/>), and whether any lies after <paramref name="through"/>: one store
    /// round trip. A session whose delivered entries are exactly the entries of that range moves its position
    /// to <paramref name="through"/> without reading them back, even while newer entries are on their way to it.</summary>
    Task<JournalSpan> CountAsync(string customerId, JournalPosition after, JournalPosition through, int limit);

    /// <summary>Drops the customer's entries at or before <paramref name="through"/> (its session has
    /// checkpointed them). Idempotent.</summary>
    Task TrimAsync(string customerId, JournalPosition through);

    /// <summary>Customers whose journal holds entries (untrimmed: their sessions may not have applied
    /// or checkpointed them), for the recovery pass at silo start.</summary>
    IAsyncEnumerable<string> PendingCustomersAsync(CancellationToken cancellationToken = default);
}

/// <summary>What <see cref="IEventJournal.CountAsync(string, JournalPosition, JournalPosition, int)"/> found.</summary>
/// <param name="InRange">Entries in the range (at most the limit asked for, plus one).</param>
/// <param name="Beyond">Whether any entry lies after the range.</param>
internal readonly record struct JournalSpan(long InRange, bool Beyond);

