using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engine.Control.Feedback;

/// <summary>Pre-aggregator (after GPSTracker's PushNotifierGrain): local to each silo, buffers signals
/// and flushes them on a timer, one call per stats shard, so the hot path costs no remote call.</summary>
/// <remarks>A buffer lost with its silo loses counts, never events: events are durable in sessions
/// before any signal is sent.</remarks>
[StatelessWorker]
internal sealed class FeedbackAggregatorGrain(IOptions<ControlOptions> options, ILogger<FeedbackAggregatorGrain> log)
    : Grain, IFeedbackAggregatorGrain
{
    private readonly ControlOptions _options = options.Value;
    private List<FeedbackSignal> _signals = [];
    private readonly Dictionary<string, long> _views = [];
    private long _persisted;
    private readonly HashSet<ArmKey> _registered = []; // arm keys already told to their experiment

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(FlushAsync, _options.FeedbackFlushInterval, _options.FeedbackFlushInterval);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FlushAsync();

    Task IFeedbackAggregatorGrain.Add(IReadOnlyList<FeedbackSignal> signals)
    {
        _signals.AddRange(signals);
        return _signals.Count >= _options.FeedbackFlushSize ? FlushAsync() : Task.CompletedTask;
    }

    Task IFeedbackAggregatorGrain.AddSessionActivity(long eventsPersisted, IReadOnlyList<string> viewedProducts)
    {
        _persisted += eventsPersisted;
        foreach (var p in viewedProducts) _views[p] = _views.GetValueOrDefault(p) + 1;
        return Task.CompletedTask;
    }

    Task IFeedbackAggregatorGrain.Flush() => FlushAsync();

    private async Task FlushAsync()
    {
        var signals = _signals;
        _signals = [];
        var persisted = _persisted;
        _persisted = 0;
        var views = _views.ToArray();
        _views.Clear();
        try
        {
            // Shard by recommendation id so an exposure and its rewards meet in one shard's log.
            var batches = signals.GroupBy(s => (s.Arm, Shard: Experiments.BucketHash.Bucket("shard", s.RecommendationId, _options.StatsShards)));
            var calls = new List<Task>();
            foreach (var batch in batches)
                calls.Add(GrainFactory.GetGrain<IArmStatsGrain>(batch.Key.Arm.ToGrainKey(batch.Key.Shard)).Apply(batch.ToArray()));
            foreach (var arm in signals.Select(s => s.Arm).Distinct())
                if (_registered.Add(arm))
                    calls.Add(GrainFactory.GetGrain<IExperimentGrain>(arm.ExperimentId).RegisterModelVersion(arm.Arm, arm.ModelVersion));
            if (persisted > 0) calls.Add(GrainFactory.GetGrain<IClusterCountersGrain>(0).AddPersisted(persisted));
            foreach (var (product, n) in views) calls.Add(GrainFactory.GetGrain<IProductGrain>(product).AddTraffic(n));
            await Task.WhenAll(calls);
        }
        catch (Exception ex)
        {
            log.LogWarning(ex, "feedback flush of {Count} signals failed; they are dropped (events stay durable in sessions)", signals.Count);
        }
    }
}
