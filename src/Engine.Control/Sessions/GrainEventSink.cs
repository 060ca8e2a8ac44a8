namespace Engine.Control.Sessions;

/// <summary>An <see cref="IEventSink"/> that routes each event to its customer's session grain and
/// acknowledges after that session's own state write: a batch becomes one call and one store write
/// per customer (plus group commit across concurrent calls to one session). The silo registers
/// <see cref="JournalEventSink"/> instead (one journal write per batch); this one stays as the
/// reference path (EventIngestionBenchmarks compares the two).</summary>
public sealed class GrainEventSink(IGrainFactory grains) : IEventSink
{
    /// <inheritdoc />
    public async ValueTask<EventOutcome> RecordAsync(CustomerEvent e, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(e.CustomerId);
        return await grains.GetGrain<ICustomerSessionGrain>(e.CustomerId).Record(e).WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EventOutcome>> RecordBatchAsync(IReadOnlyList<CustomerEvent> events, CancellationToken cancellationToken = default)
    {
        var outcomes = new EventOutcome[events.Count];
        var groups = Enumerable.Range(0, events.Count).GroupBy(i => events[i].CustomerId).ToArray();
        await Task.WhenAll(groups.Select(async g =>
        {
            if (string.IsNullOrEmpty(g.Key)) { foreach (var i in g) outcomes[i] = EventOutcome.Invalid; return; }
            var indices = g.ToArray();
            var result = await grains.GetGrain<ICustomerSessionGrain>(g.Key).RecordBatch(indices.Select(i => events[i]).ToArray());
            for (var k = 0; k < indices.Length; k++) outcomes[indices[k]] = result[k];
        })).WaitAsync(cancellationToken);
        return outcomes;
    }

    /// <inheritdoc />
    public async ValueTask RecordExposureAsync(Exposure exposure, CancellationToken cancellationToken = default) =>
        await grains.GetGrain<ICustomerSessionGrain>(exposure.CustomerId).RecordExposure(exposure).WaitAsync(cancellationToken);
}
