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
    /// <summary>Logged recommendations with their rewards, oldest first (bounded by
    /// <see cref="ControlOptions.DecisionLogCapacity"/>). One context per recommendation, not per product.</summary>
    [Id(2)] public List<LoggedDecision> Log { get; set; } = [];
}

/// <summary>One shard of one (experiment, arm, model version): counts, reward sums and the
/// decision log. Rewards are joined to the logged decision by (recommendation, product): the
/// flusher shards by recommendation id, so an exposure and its rewards meet in one shard.</summary>
internal sealed class ArmStatsGrain(
    [PersistentState("armstats", ControlStorage.Name)] IPersistentState<ArmStatsState> state,
    IOptions<ControlOptions> options, TimeProvider time) : Grain, IArmStatsGrain
{
    private readonly ControlOptions _options = options.Value;
    private Dictionary<string, int>? _byId; // recommendation id → index in state.State.Log (not persisted)
    private DateTimeOffset _lastWrite = DateTimeOffset.MinValue;
    private IGrainTimer? _writeTimer;       // pending write of changes made since _lastWrite
    private bool _dirty;                    // changes not yet written

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
        var excess = s.Log.Count - _options.DecisionLogCapacity;
        if (excess > 0)
        {
            s.Log.RemoveRange(0, excess);
            _byId = null; // indices moved: rebuilt on the next join
        }
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

    private Dictionary<string, int> Index()
    {
        if (_byId is not null) return _byId;
        var log = state.State.Log;
        _byId = new Dictionary<string, int>(log.Count, StringComparer.Ordinal);
        for (var i = 0; i < log.Count; i++) _byId[log[i].RecommendationId] = i;
        return _byId;
    }

    private void Log(FeedbackSignal exposure, DateTimeOffset now)
    {
        var index = Index();
        if (index.ContainsKey(exposure.RecommendationId)) return; // a replayed exposure
        var actions = new LoggedAction[exposure.Actions?.Count ?? 0];
        for (var i = 0; i < actions.Length; i++)
            actions[i] = new LoggedAction(exposure.Actions![i].ProductId, i + 1, exposure.Actions[i].Probability, 0, 0, 0, 0, 0);
        var log = state.State.Log;
        index[exposure.RecommendationId] = log.Count;
        log.Add(new LoggedDecision(exposure.RecommendationId, exposure.Arm, exposure.Context ?? "",
            exposure.Timestamp == default ? now : exposure.Timestamp, exposure.Shadow, actions, null));
    }

    private void Join(FeedbackSignal signal, double reward, DateTimeOffset now)
    {
        if (!Index().TryGetValue(signal.RecommendationId, out var i)) return; // logged before this shard's window
        var d = state.State.Log[i];
        var actions = d.Actions.ToArray();
        var a = Array.FindIndex(actions, x => x.ProductId == signal.ProductId);
        if (a < 0) return; // a product the recommendation did not show
        var x = actions[a];
        actions[a] = signal.Kind switch
        {
            FeedbackKind.Click => x with { Clicks = x.Clicks + 1, Reward = x.Reward + reward },
            FeedbackKind.AddToCart => x with { Carts = x.Carts + 1, Reward = x.Reward + reward },
            FeedbackKind.Purchase => x with { Purchases = x.Purchases + 1, Reward = x.Reward + reward },
            FeedbackKind.Return => x with { Returns = x.Returns + 1, Reward = x.Reward + reward },
            _ => x,
        };
        state.State.Log[i] = d with { Actions = actions, UpdatedAt = now };
    }

    Task<ArmCounters> IArmStatsGrain.GetCounters() => Task.FromResult(state.State.Counters);

    Task<IReadOnlyList<DecisionRecord>> IArmStatsGrain.Export(int maxRecords)
    {
        var records = state.State.Decisions.Concat(state.State.Log.SelectMany(d =>
            d.Actions.Select(a => new DecisionRecord(d.RecommendationId, d.Context, a.ProductId, a.Probability, a.Reward)))).ToList();
        return Task.FromResult<IReadOnlyList<DecisionRecord>>(records.Skip(Math.Max(0, records.Count - maxRecords)).ToArray());
    }

    Task<IReadOnlyList<LoggedDecision>> IArmStatsGrain.ExportDecisions(int maxDecisions)
    {
        var log = state.State.Log;
        var take = Math.Clamp(maxDecisions, 0, log.Count);
        return Task.FromResult<IReadOnlyList<LoggedDecision>>(log.GetRange(log.Count - take, take).ToArray());
    }
}
