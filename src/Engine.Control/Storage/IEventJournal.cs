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

    /// <summary>Appends each customer's events as one entry; completes once every entry is durable.
    /// All entries go out as one pipelined store operation.</summary>
    Task AppendAsync(IReadOnlyList<KeyValuePair<string, CustomerEvent[]>> batch, CancellationToken cancellationToken = default);

    /// <summary>The customer's entries after <paramref name="after"/> (exclusive), oldest first, at most <paramref name="max"/>.</summary>
    Task<IReadOnlyList<JournalEntry>> ReadAsync(string customerId, JournalPosition after, int max);

    /// <summary>Drops the customer's entries at or before <paramref name="through"/> (its session has
    /// checkpointed them). Idempotent.</summary>
    Task TrimAsync(string customerId, JournalPosition through);

    /// <summary>Customers whose journal holds entries (untrimmed: their sessions may not have applied
    /// or checkpointed them), for the recovery pass at silo start.</summary>
    IAsyncEnumerable<string> PendingCustomersAsync(CancellationToken cancellationToken = default);
}

/// <summary>One journal entry: the events one sink batch carried for one customer.</summary>
/// <param name="Position">Where it sits in the customer's journal.</param>
/// <param name="Events">The events, in the batch's order.</param>
internal readonly record struct JournalEntry(JournalPosition Position, CustomerEvent[] Events);

/// <summary>A position in a customer's journal, ordered: a Redis stream id (milliseconds, sequence);
/// the in-memory journal uses (0, n). <see cref="Start"/> is before every entry.</summary>
[GenerateSerializer, Immutable]
public readonly record struct JournalPosition([property: Id(0)] long Major, [property: Id(1)] long Minor) : IComparable<JournalPosition>
{
    /// <summary>Before the first entry.</summary>
    public static JournalPosition Start => default;

    /// <summary>The smallest position after this one.</summary>
    public JournalPosition Next => Minor == long.MaxValue ? new(Major + 1, 0) : new(Major, Minor + 1);

    /// <inheritdoc/>
    public int CompareTo(JournalPosition other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    /// <summary>The later of two positions.</summary>
    public static JournalPosition Max(JournalPosition a, JournalPosition b) => a.CompareTo(b) >= 0 ? a : b;

    /// <summary>Redis stream id form, "major-minor".</summary>
    public override string ToString() => $"{Major}-{Minor}";

    /// <summary>Parses a Redis stream id ("ms-seq").</summary>
    public static JournalPosition Parse(string id)
    {
        var dash = id.IndexOf('-');
        if (dash <= 0 || !long.TryParse(id.AsSpan(0, dash), out var major) || !long.TryParse(id.AsSpan(dash + 1), out var minor))
            throw new FormatException($"'{id}' is not a journal position (a Redis stream id 'ms-seq')");
        return new(major, minor);
    }
}
