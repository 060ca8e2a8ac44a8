namespace Engine.Control.Sessions;

/// <summary>One shopper's session (key: customer id). The one owner of that shopper's state
/// (STYLE.md habit 8). Every call that changes state returns only once the change is durable.</summary>
public interface ICustomerSessionGrain : IGrainWithStringKey
{
    /// <summary>Applies one event; returns once it is durable (writes are group-committed).</summary>
    Task<EventOutcome> Record(CustomerEvent e);

    /// <summary>Applies a batch with one write; outcomes in input order.</summary>
    Task<IReadOnlyList<EventOutcome>> RecordBatch(IReadOnlyList<CustomerEvent> events);

    /// <summary>Logs a recommendation served to (or computed in shadow for) this shopper, so later
    /// events naming its id are rewarded to its arm.</summary>
    Task RecordExposure(Exposure exposure);

    /// <summary>Logs several recommendations served to this shopper (the exposure pre-aggregator's path, one call
    /// per customer per batch): each is kept for reward attribution and passed on to the stats shards as
    /// <see cref="RecordExposure"/> does, and a recommendation id seen before is ignored. Unlike
    /// <see cref="RecordExposure"/> it returns once they are applied in memory, without a state write of its own:
    /// the session's state is written with its next checkpoint, at most
    /// <c>ControlOptions.ExposureCheckpointInterval</c> later (exposure logging is best effort: a silo crash
    /// before then loses their attribution, never an acknowledged event).</summary>
    /// <exception cref="ArgumentException">An exposure names another customer (nothing is applied).</exception>
    Task RecordExposures(IReadOnlyList<Exposure> exposures);

    /// <summary>Applies this shopper's journaled events not applied yet (the silo's event sink has
    /// acknowledged them already; the silo calls this shortly after). The changes are checkpointed to
    /// grain storage later; until then the journal holds them.</summary>
    Task ApplyJournal();

    /// <summary>Applies journal entries the silo has just written (and acknowledged) for this shopper,
    /// without reading the journal back; entries already applied are skipped. The session still reads
    /// its journal before it checkpoints or answers a read, which also picks up entries written by
    /// other silos.</summary>
    Task ApplyEntries(IReadOnlyList<JournalEntry> entries);

    /// <summary>The profile, recent items, cart and abandonment flag as of now, including every event
    /// acknowledged before the call (the session drains its journal first).</summary>
    Task<SessionProfile> GetProfile();

    /// <summary>Only <see cref="SessionProfile.Profile"/> of <see cref="GetProfile"/> (the same read-your-writes): what
    /// a Recommend's profile-cache miss reads, without copying the recent items and cart it does not use. Wrapped as
    /// immutable so an in-silo call does not copy the vector either. // [dim] f32, empty before the first product event</summary>
    Task<Immutable<float[]>> GetProfileVector();
}
