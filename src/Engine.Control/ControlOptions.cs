using Engine.Control.Feedback;

namespace Engine.Control;

/// <summary>Tunables of the control plane, bound from the "Control" configuration section.</summary>
public sealed class ControlOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Control";

    /// <summary>Half-life of an interaction's weight in the session profile: after it, a view counts half.</summary>
    public TimeSpan ProfileHalfLife { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Idle time after which a non-empty cart counts as abandoned.</summary>
    public TimeSpan AbandonAfter { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Recent items kept per session.</summary>
    public int RecentItems { get; set; } = 20;

    /// <summary>Event ids remembered per session for idempotency: a retry older than this many
    /// newer events is applied again. Retries come within seconds; sessions see tens of events.</summary>
    public int DedupWindow { get; set; } = 512;

    /// <summary>Exposures remembered per session for reward attribution.</summary>
    public int ExposureWindow { get; set; } = 64;

    /// <summary>How often the silo's <c>JournalApplier</c> tells sessions with newly journaled events to
    /// apply them (the sink has acknowledged them already; a profile read drains at once anyway).
    /// Shorter: stats follow sooner; longer: more events per session call.</summary>
    public TimeSpan JournalApplyInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Journal entries a customer's session is handed at once by a timed pass of the applier: fewer wait
    /// for later passes, up to <see cref="JournalApplyMaxDelay"/>. One session call per customer per pass cost about
    /// one call per event with 20,000 active shoppers (each got an event every few hundred ms), and a call costs
    /// about the same whatever it carries. A profile read drains at once anyway (read-your-writes); what waits is
    /// the feedback (stats) and the checkpoint. 1: every pass hands everything over (the earlier behaviour).</summary>
    public int JournalApplyMinEntries { get; set; } = 4;

    /// <summary>Longest time an entry waits for <see cref="JournalApplyMinEntries"/> company before a pass hands it over.</summary>
    public TimeSpan JournalApplyMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Entries journaled on a silo and not yet applied to their sessions beyond which the event sink
    /// holds back its answers (after the journal write: the events are durable, the caller just waits) until the
    /// silo's applier catches up: backpressure instead of an unbounded backlog in memory. 100,000 entries are
    /// about 2 s at 50,000 events/s, and about 20 MB.</summary>
    public int JournalApplyBacklog { get; set; } = 100_000;

    /// <summary>Longest time a session keeps journal-applied changes in memory before it checkpoints them to
    /// grain storage (and trims its journal): the age bound of the checkpoint policy, counted from the first
    /// change not yet checkpointed. With <see cref="SessionCheckpointEntries"/> it bounds how much journal a
    /// session replays after a crash and how much journal the store holds per session. A checkpoint costs
    /// the same whatever it covers (a state write and a trim), so with many active shoppers the checkpoints
    /// per second are about active sessions / this interval: 5 s (the earlier default) with 20,000 active
    /// shoppers meant 4,000 checkpoints/s, a checkpoint every ~2 events, and ingestion fell to 20.8k events/s
    /// (bench/RESULTS.md, issue 6). Slow sessions checkpoint on this age, busy ones on their entry count. Each
    /// arming waits a delay drawn in [interval/2, interval], so sessions that changed together write apart.</summary>
    public TimeSpan SessionCheckpointInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Journal entries (one per sink call that carried events for the customer) a session applies
    /// before it checkpoints without waiting for <see cref="SessionCheckpointInterval"/>: the length bound of
    /// the checkpoint policy, so a busy session's journal stays short (replay after a crash reads at most
    /// about this many entries, in one <see cref="JournalReadBatch"/>) while a checkpoint is shared by this many
    /// entries. 256 = <see cref="JournalReadBatch"/>: a replay is one read; at 32, 512 shoppers with ~160 events/s each
    /// checkpointed 3,400 times a second (against 100 with the 5-s age alone) and ingestion fell from 81k to 37k
    /// events/s (`Engine.Benchmarks ingest --shoppers 512`, same run). Each activation draws its bound once in [N/2, N], so sessions that start together do not all
    /// checkpoint in the same instant. 0: age only (the earlier policy, with the 5-s interval: `Control:SessionCheckpointEntries=0`,
    /// `Control:SessionCheckpointInterval=00:00:05`).</summary>
    public int SessionCheckpointEntries { get; set; } = 256;

    /// <summary>Longest time a session keeps exposures logged through <c>ICustomerSessionGrain.RecordExposures</c>
    /// in memory before it writes its state (an event's checkpoint, or deactivation, writes them sooner). Writing
    /// the session on every exposure cost Recommend its p99 at 2,000/s (bench/RESULTS.md): with 10k shoppers
    /// each getting a list every few seconds, a shorter interval means a state write per list again. Each arming
    /// waits a delay drawn in [interval/2, interval]: 10k sessions that got their first lists in the same few
    /// seconds otherwise wrote in the same few seconds every interval (bench/RESULTS.md, eighth session).</summary>
    public TimeSpan ExposureCheckpointInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Journal entries a session reads per store round trip while draining.</summary>
    public int JournalReadBatch { get; set; } = 256;

    /// <summary>Redis journal: coalesce concurrent sink calls into writes of one command each (true, the
    /// default); false is the earlier form (each call its own pipeline of one XADD per customer, several
    /// fsyncs per call), kept to measure against (bench/Engine.Benchmarks/Control/IngestRun.cs).</summary>
    public bool JournalGroupCommit { get; set; } = true;

    /// <summary>Event-journal writes (one store command each, one fsync on Redis with <c>appendfsync always</c>)
    /// outstanding at once; sink calls that arrive while this many are out wait and share the next write
    /// (group commit: the write size follows the load). More than one keeps the next write on its way while
    /// the store fsyncs the previous one.</summary>
    public int JournalWritesInFlight { get; set; } = 4;

    /// <summary>Most journal entries (one per customer per sink call) in one journal write: bounds how long
    /// one write holds redis-server (its script runs one XADD per entry) and the size of one command.</summary>
    public int JournalMaxEntriesPerWrite { get; set; } = 2048;

    /// <summary>Redis journal: the sessions' checkpoint commands on the journal (the trim after a state write, the
    /// range count that moves a session past the entries it was handed) go out coalesced across sessions, one
    /// script call per batch (true, the default), with <see cref="JournalWritesInFlight"/> and
    /// <see cref="JournalMaxEntriesPerWrite"/> as limits; false is the earlier form (one command per session
    /// and checkpoint), kept to measure against (`Engine.Benchmarks ingest --policy old`).</summary>
    public bool SessionCheckpointBatching { get; set; } = true;

    /// <summary>Reward per feedback kind.</summary>
    public RewardValues Rewards { get; set; } = new();

    /// <summary>Stats grains per (experiment, arm, model version): spreads a hot arm's writes.</summary>
    public int StatsShards { get; set; } = 4;

    /// <summary>How often pre-aggregators flush to stats grains.</summary>
    public TimeSpan FeedbackFlushInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Buffered signals that trigger a flush before the timer.</summary>
    public int FeedbackFlushSize { get; set; } = 4096;

    /// <summary>Logged recommendations kept per stats shard for export (oldest dropped first). Each holds its
    /// context once (about 1 KB for a list of 10) and the shard's state is written on every flush, so this
    /// bounds both memory and write size: 2,000 × 4 shards = 8,000 per arm and model version.</summary>
    public int DecisionLogCapacity { get; set; } = 2000;

    /// <summary>Least time between two writes of one stats shard's counters (its decision log has its own,
    /// <see cref="DecisionLogWriteInterval"/>). Writing the shard's state on every one-second flush cost Recommend its
    /// p99 at 1,500–2,000 requests/s (10k products: 47 and 240 ms against 3.5 and 4.3 ms with exposure logging off,
    /// bench/RESULTS.md); changes in between are written by a timer and at deactivation. A silo crash loses at most
    /// this much of the aggregates (acknowledged events themselves stay in the sessions' state and journal).
    /// <see cref="TimeSpan.Zero"/> writes on every flush.</summary>
    public TimeSpan StatsWriteInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Least time between two writes of one stats shard's decision log (~3 MB at
    /// <see cref="DecisionLogCapacity"/> 2,000 lists of 10); changes in between are written by a timer and at
    /// deactivation. Written with the counters every 10 s, the log put ~4.5 MB/s of arrays on the large-object heap at
    /// 2,000 Recommends/s, which started every gen-2 collection of the server (bench/RESULTS.md). A silo crash loses at
    /// most this much of the log (an export aid: at 2,000 Recommends/s a shard's 2,000 decisions turn over every ~4 s
    /// anyway); counters and events are not affected. <see cref="TimeSpan.Zero"/> writes it with every counter write.</summary>
    public TimeSpan DecisionLogWriteInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Valid copy at or above this generator confidence is published without review.</summary>
    public float AutoPublishConfidence { get; set; } = 0.8f;

    /// <summary>Terms generated copy must never contain (case-insensitive, whole words).</summary>
    public List<string> BannedTerms { get; set; } = ["guaranteed", "miracle", "cure", "risk-free", "best in the world"];
}

/// <summary>Name of the grain storage provider all control grains use.</summary>
public static class ControlStorage
{
    /// <summary>Storage provider name.</summary>
    public const string Name = "control";
}
