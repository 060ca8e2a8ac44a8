using Microsoft.Extensions.Options;

namespace Engine.Control.Feedback;

/// <summary>Persisted state of one stats shard.</summary>
[GenerateSerializer]
public sealed class ArmStatsState
{
    [Id(0)] public ArmCounters Counters { get; set; } = ArmCounters.Zero;
    /// <summary>Per-product decision records of an earlier layout: no longer written, still exported so a
    /// stored state of that layout loses nothing.</summary>
    [Id(1)] public List<DecisionRecord> Decisions { get; set; } = [];
    /// <summary>Logged recommendations of an earlier layout (one record per decision): no longer written; a stored
    /// state of that layout is moved into <see cref="DecisionLog"/> on activation.</summary>
    [Id(2)] public List<LoggedDecision> Log { get; set; } = [];
    /// <summary>Logged recommendations with their rewards, oldest first (bounded by
    /// <see cref="ControlOptions.DecisionLogCapacity"/>), in compact form; null until the first activation.</summary>
    [Id(3)] public DecisionLog? DecisionLog { get; set; }
}

/// <summary>One shard of one (experiment, arm, model version): counts, reward sums and the
/// decision log. Rewards are joined to the logged decision by (recommendation, product): the
/// flusher shards by recommendation id, so an exposure and its rewards meet in one shard.</summary>
internal sealed class ArmStatsGrain(
    [PersistentState("armstats", ControlStorage.Name)] IPersistentState<ArmStatsState> state,
    IOptions<ControlOptions> options, TimeProvider time) : Grain, IArmStatsGrain
{
    private readonly ControlOptions _options = options.Value;
    private DateTimeOffset _lastWrite = DateTimeOffset.MinValue;
    private IGrainTimer? _writeTimer;       // pending write of changes made since _lastWrite
    private bool _dirty;                    // changes not yet written

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var s = state.State;
        var log = s.DecisionLog ?? new DecisionLog(_options.DecisionLogCapacity);
        if (log.Capacity != _options.DecisionLogCapacity) log = log.Resized(_options.DecisionLogCapacity);
        if (s.Log.Count > 0) // a stored state of the list layout: moved over, written by the next write
        {
            foreach (var d in s.Log) log.Add(d);
            s.Log = [];
        }
        s.DecisionLog = log;
        return base.OnActivateAsync(cancellationToken);
    }

    async Task IArmStatsGrain.Apply(IReadOnlyList<FeedbackSignal> batch)
    {
        var s = state.State;
        var c = s.Counters;
        long assignments = 0, exposures = 0, clicks = 0, carts = 0, purchases = 0, returns = 0;
        double sum = 0, squares = 0;
        var now = time.GetUtcNow();
        foreach (var signal in batch)
        {
            switch (signal.Kind)
            {
                case FeedbackKind.Assignment: assignments++; continue;
                case FeedbackKind.Exposure: exposures++; Log(signal, now); continue;
                case FeedbackKind.Click: clicks++; break;
                case FeedbackKind.AddToCart: carts++; break;
                case FeedbackKind.Purchase: purchases++; break;
                case FeedbackKind.Return: returns++; break;
            }
            var reward = _options.Rewards.For(signal.Kind);
            sum += reward;
            squares += reward * reward;
            Join(signal, reward, now);
        }
        s.Counters = c.Add(new ArmCounters(assignments, exposures, clicks, carts, purchases, returns, sum, squares));
        _dirty = true;
        await WriteSoonAsync(now);
    }

    /// <summary>Writes now when the last write is older than <see cref="ControlOptions.StatsWriteInterval"/>,
    /// else once by a timer when the interval is up (see that option for why).</summary>
    private async Task WriteSoonAsync(DateTimeOffset now)
    {
        var interval = _options.StatsWriteInterval;
        if (interval <= TimeSpan.Zero || now - _lastWrite >= interval)
        {
            await WriteAsync();
            // The flusher applies to every shard of an arm at once, so shards that wrote now would write together
            // every interval after: each serializes its whole decision log (~2.5 MB at 2,000 entries), and 4 at once
            // on 2 cores stall Recommend. Shard s of n moves its next write s/n of an interval earlier instead.
            _lastWrite -= interval * WritePhase();
            return;
        }
        _writeTimer ??= this.RegisterGrainTimer(static (grain, _) => grain.WriteByTimerAsync(), this,
            new GrainTimerCreationOptions(_lastWrite + interval - now, Timeout.InfiniteTimeSpan) { KeepAlive = false });
    }

    /// <summary>This shard's write phase in [0, 1): its shard number over <see cref="ControlOptions.StatsShards"/>.</summary>
    private double WritePhase()
    {
        var key = this.GetPrimaryKeyString();
        return int.TryParse(key.AsSpan(key.LastIndexOf('|') + 1), out var shard) && _options.StatsShards > 1
            ? (double)(shard % _options.StatsShards) / _options.StatsShards
            : 0;
    }

    private async Task WriteByTimerAsync()
    {
        _writeTimer?.Dispose();
        _writeTimer = null;
        if (!_dirty) return;
        try { await WriteAsync(); }
        catch (Exception) { await WriteSoonAsync(time.GetUtcNow()); } // still dirty: the next timer tries again
    }

    private async Task WriteAsync()
    {
        _writeTimer?.Dispose();
        _writeTimer = null;
        _dirty = false;
        _lastWrite = time.GetUtcNow();
        try { await state.WriteStateAsync(); }
        catch { _dirty = true; throw; }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_dirty) await WriteAsync();
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    private DecisionLog Ring => state.State.DecisionLog!; // set on activation

    /// <summary>Logs an exposure (a replayed one changes nothing): its context bytes and product ids are copied into
    /// the compact log, so the signal and what it carries die young.</summary>
    private void Log(FeedbackSignal exposure, DateTimeOffset now) =>
        Ring.Add(exposure.RecommendationId, exposure.Arm, exposure.ContextUtf8, exposure.Context,
            exposure.Timestamp == default ? now : exposure.Timestamp, exposure.Shadow, exposure.Actions);

    /// <summary>Joins a reward to the shown product it names (nothing when the decision is older than this shard's log
    /// or did not show that product).</summary>
    private void Join(FeedbackSignal signal, double reward, DateTimeOffset now) =>
        Ring.Join(signal.RecommendationId, signal.ProductId, signal.Kind, reward, now);

    Task<ArmCounters> IArmStatsGrain.GetCounters() => Task.FromResult(state.State.Counters);

    Task<IReadOnlyList<DecisionRecord>> IArmStatsGrain.Export(int maxRecords)
    {
        var records = state.State.Decisions.Concat(Ring.Latest(Ring.Count).SelectMany(d =>
            d.Actions.Select(a => new DecisionRecord(d.RecommendationId, d.Context, a.ProductId, a.Probability, a.Reward)))).ToList();
        return Task.FromResult<IReadOnlyList<DecisionRecord>>(records.Skip(Math.Max(0, records.Count - maxRecords)).ToArray());
    }

    Task<IReadOnlyList<LoggedDecision>> IArmStatsGrain.ExportDecisions(int maxDecisions) =>
        Task.FromResult<IReadOnlyList<LoggedDecision>>(Ring.Latest(maxDecisions));
}
