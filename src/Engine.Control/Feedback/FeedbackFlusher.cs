using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engine.Control.Feedback;

/// <summary>Flushes the silo's <see cref="FeedbackBuffer"/> every
/// <see cref="ControlOptions.FeedbackFlushInterval"/> (and early when it holds
/// <see cref="ControlOptions.FeedbackFlushSize"/> signals): one call per stats shard, one to the
/// cluster counters, one per viewed product. Runs while the silo is Active, so the last flush at
/// shutdown still reaches the grains.</summary>
internal sealed class FeedbackFlusher(
    FeedbackBuffer buffer, IGrainFactory grains, IOptions<ControlOptions> options, ILogger<FeedbackFlusher> log)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly ControlOptions _options = options.Value;
    private readonly SemaphoreSlim _one = new(1, 1); // one flush at a time (timer, early, explicit)
    private readonly HashSet<ArmKey> _registered = []; // arm keys already told to their experiment; under _one
    private CancellationTokenSource? _stop;
    private Task? _loop;
    private int _earlyPending;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(FeedbackFlusher), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    private Task StartAsync(CancellationToken cancellationToken)
    {
        _stop = new CancellationTokenSource();
        _loop = Task.Run(() => LoopAsync(_stop.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        _stop?.Cancel();
        if (_loop is not null) await _loop;
        await FlushAsync();
    }

    private async Task LoopAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_options.FeedbackFlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop)) await FlushAsync();
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Called after each add: flushes soon, off the caller's turn, once the buffer holds
    /// <see cref="ControlOptions.FeedbackFlushSize"/> signals or <see cref="FeedbackBuffer.ExposuresPerFlush"/> exposures.</summary>
    public void FlushSoon(FeedbackBuffer.Fill fill)
    {
        if (fill.Signals < _options.FeedbackFlushSize && fill.Exposures < FeedbackBuffer.ExposuresPerFlush) return;
        RequestFlush();
    }

    /// <summary>Flushes soon, off the caller's turn, whatever the buffer holds: the exposure pre-aggregator calls it once
    /// a batch's sessions have applied it, so the batch's exposure signals (contexts, lists) reach the stats shards' logs
    /// within milliseconds and die young instead of waiting for later batches in the buffer. Requests made while one is
    /// pending share it; one made after a flush took the buffer gets a flush of its own.</summary>
    public void RequestFlush()
    {
        if (Interlocked.Exchange(ref _earlyPending, 1) == 1) return; // the pending flush has not drained yet: it takes them
        _ = Task.Run(() => FlushAsync(early: true));
    }

    /// <summary>Sends everything buffered so far; failures are logged and the batch dropped (counts
    /// only: the events are durable in the sessions).</summary>
    public Task FlushAsync() => FlushAsync(early: false);

    private async Task FlushAsync(bool early)
    {
        await _one.WaitAsync();
        try
        {
            if (early) Volatile.Write(ref _earlyPending, 0); // signals added from here on need another request
            var (signals, persisted, views) = buffer.Drain();
            if (signals.Count == 0 && persisted == 0 && views.Count == 0) return;
            try
            {
                // Shard by recommendation id so an exposure and its rewards meet in one shard's log.
                var calls = new List<Task>();
                foreach (var batch in signals.GroupBy(s => (s.Arm, Shard: BucketHash.Bucket("shard", s.RecommendationId, _options.StatsShards))))
                    calls.Add(grains.GetGrain<IArmStatsGrain>(batch.Key.Arm.ToGrainKey(batch.Key.Shard)).Apply(batch.ToArray()));
                foreach (var arm in signals.Select(s => s.Arm).Distinct())
                    if (_registered.Add(arm))
                        calls.Add(grains.GetGrain<IExperimentGrain>(arm.ExperimentId).RegisterModelVersion(arm.Arm, arm.ModelVersion));
                if (persisted > 0) calls.Add(grains.GetGrain<IClusterCountersGrain>(0).AddPersisted(persisted));
                foreach (var (product, n) in views) calls.Add(grains.GetGrain<IProductGrain>(product).AddTraffic(n));
                await Task.WhenAll(calls);
            }
            catch (Exception ex)
            {
                log.LogWarning(ex, "feedback flush of {Count} signals failed; they are dropped (events stay durable in sessions)", signals.Count);
            }
        }
        finally
        {
            _one.Release();
        }
    }
}
