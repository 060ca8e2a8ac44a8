using Engine.Control.Catalog;
using Engine.Control.Storage;

namespace Engine.Control.Sessions;

/// <summary>The silo's default <see cref="IEventSink"/>: cross-session group commit. A batch's events
/// (any number of customers) are checked, written to the <see cref="IEventJournal"/> in ONE store
/// operation, and acknowledged once that write is durable; the sessions apply them afterwards
/// (<see cref="JournalApplier"/>), in memory, and checkpoint their state to grain storage now and
/// then. Compared with <see cref="GrainEventSink"/> (one session call and one state write per
/// customer before the ack), the acknowledged path has no grain call and one store round trip.</summary>
/// <remarks>
/// <para>Outcomes: <see cref="EventOutcome.Invalid"/> for an event malformed whatever the session
/// (<see cref="EventChecks"/>), <see cref="EventOutcome.UnknownProduct"/> when the catalog does not know
/// the product (checked here through <see cref="IProductEmbeddings"/>), <see cref="EventOutcome.Duplicate"/>
/// for an event id repeated within the batch; everything else is journaled and answered
/// <see cref="EventOutcome.Accepted"/>. A retry of an event acknowledged earlier is also answered
/// Accepted (telling needs the session's state): it is journaled again and the session applies it
/// once (idempotent by event id), so counts and profiles do not change.</para>
/// <para>Read-your-writes: a session drains its journal before it answers
/// <see cref="ICustomerSessionGrain.GetProfile"/>, so a read after an acknowledged event sees it,
/// whichever silo journaled the event and whichever hosts the session.</para>
/// <para>If the journal write fails (Redis down or timing out), the call throws
/// <see cref="EventJournalUnavailableException"/> and nothing of the batch is acknowledged.</para>
/// </remarks>
internal sealed class JournalEventSink(IEventJournal journal, IProductEmbeddings embeddings, JournalApplier applier, IGrainFactory grains) : IEventSink
{
    /// <inheritdoc />
    public async ValueTask<EventOutcome> RecordAsync(CustomerEvent e, CancellationToken cancellationToken = default) =>
        (await RecordBatchAsync([e], cancellationToken).ConfigureAwait(false))[0];

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EventOutcome>> RecordBatchAsync(IReadOnlyList<CustomerEvent> events, CancellationToken cancellationToken = default)
    {
        var outcomes = new EventOutcome[events.Count];
        var byCustomer = new Dictionary<string, List<CustomerEvent>>();
        var ids = new HashSet<Guid>(events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (!EventChecks.IsWellFormed(e)) { outcomes[i] = EventOutcome.Invalid; continue; }
            if (!ids.Add(e.EventId)) { outcomes[i] = EventOutcome.Duplicate; continue; }
            if (e.NeedsProduct && await embeddings.GetAsync(e.ProductId!).ConfigureAwait(false) is null)
            {
                outcomes[i] = EventOutcome.UnknownProduct; // not journaled: a retry after the product is added applies
                continue;
            }
            outcomes[i] = EventOutcome.Accepted;
            if (!byCustomer.TryGetValue(e.CustomerId, out var list)) byCustomer[e.CustomerId] = list = [];
            list.Add(e);
        }
        if (byCustomer.Count == 0) return outcomes;

        var entries = byCustomer.Select(g => KeyValuePair.Create(g.Key, g.Value.ToArray())).ToArray();
        JournalPosition[] positions;
        try
        {
            positions = await journal.AppendAsync(entries, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new EventJournalUnavailableException(
                $"{events.Count} event(s) NOT acknowledged: the event journal ({journal.Description}) did not confirm the write ({ex.GetType().Name}: {ex.Message}); send them again", ex);
        }
        for (var i = 0; i < entries.Length; i++)
            applier.Enqueue(entries[i].Key, new JournalEntry(positions[i], entries[i].Value));
        await applier.WaitForRoomAsync(cancellationToken).ConfigureAwait(false); // backpressure (ControlOptions.JournalApplyBacklog)
        return outcomes;
    }

    /// <inheritdoc />
    public async ValueTask RecordExposureAsync(Exposure exposure, CancellationToken cancellationToken = default) =>
        await grains.GetGrain<ICustomerSessionGrain>(exposure.CustomerId).RecordExposure(exposure).WaitAsync(cancellationToken).ConfigureAwait(false);
}
