namespace Engine.Control.Feedback;

/// <summary>Hot intake of feedback (key 0; a [StatelessWorker]: one or more local activations per
/// silo). Buffers signals and flushes them in batches, on a timer, to the sharded stats grains.</summary>
public interface IFeedbackAggregatorGrain : IGrainWithIntegerKey
{
    /// <summary>Buffers signals; returns at once.</summary>
    Task Add(IReadOnlyList<FeedbackSignal> signals);

    /// <summary>Counts events made durable by sessions (the cluster's <c>eventsPersisted</c>) and
    /// product views (product traffic orders the review queue).</summary>
    Task AddSessionActivity(long eventsPersisted, IReadOnlyList<string> viewedProducts);

    /// <summary>Flushes this activation's buffer now (tests, shutdown).</summary>
    Task Flush();
}

/// <summary>One shard of one arm's statistics (key: <see cref="ArmKey.ToGrainKey"/>).</summary>
public interface IArmStatsGrain : IGrainWithStringKey
{
    /// <summary>Adds a batch of signals; persisted before it returns.</summary>
    Task Apply(IReadOnlyList<FeedbackSignal> batch);

    /// <summary>This shard's counts.</summary>
    [AlwaysInterleave]
    Task<ArmCounters> GetCounters();

    /// <summary>This shard's logged decisions, newest last.</summary>
    Task<IReadOnlyList<DecisionRecord>> Export(int maxRecords);

    /// <summary>This shard's latest <paramref name="maxDecisions"/> logged recommendations with rewards per
    /// kind, oldest first.</summary>
    Task<IReadOnlyList<LoggedDecision>> ExportDecisions(int maxDecisions);
}

/// <summary>Cluster-wide counters (key 0).</summary>
public interface IClusterCountersGrain : IGrainWithIntegerKey
{
    /// <summary>Adds to the count of events persisted.</summary>
    Task AddPersisted(long events);

    /// <summary>Events persisted since the cluster's store was created (as flushed by the aggregators).</summary>
    [AlwaysInterleave]
    Task<long> GetEventsPersisted();
}
