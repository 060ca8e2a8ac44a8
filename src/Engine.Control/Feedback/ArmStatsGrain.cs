using Microsoft.Extensions.Options;

namespace Engine.Control.Feedback;

/// <summary>Persisted counters of one stats shard (its decision log is a state of its own: <see cref="ArmLogState"/>).</summary>
[GenerateSerializer]
public sealed class ArmStatsState
{
    [Id(0)] public ArmCounters Counters { get; set; } = ArmCounters.Zero;
    /// <summary>Per-product decision records of an earlier layout: no longer written, still exported so a
    /// stored state of that layout loses nothing.</summary>
    [Id(1)] public List<DecisionRecord> Decisions { get; set; } = [];
    /// <summary>Logged recommendations of an earlier layout (one record per decision): no longer written; a stored
    /// state of that layout is moved into the decision log on activation.</summary>
    [Id(2)] public List<LoggedDecision> Log { get; set; } = [];
    /// <summary>The decision log of an earlier layout, written with the counters (~3 MB every
    /// <see cref="ControlOptions.StatsWriteInterval"/>): no longer written; a stored state of that layout is moved into
    /// <see cref="ArmLogState"/> on activation.</summary>
    [Id(3)] public DecisionLog? DecisionLog { get; set; }
}

/// <summary>Persisted decision log of one stats shard, written apart from its counters and less often
/// (<see cref="ControlOptions.DecisionLogWriteInterval"/>).</summary>
[GenerateSerializer]
public sealed class ArmLogState
{
    /// <summary>Logged recommendations with their rewards, oldest first (bounded by
    /// <see cref="ControlOptions.DecisionLogCapacity"/>), in compact form; null until the first write.</summary>
    [Id(0)] public DecisionLog? Log { get; set; }
}

/// <summary>One shard of one (experiment, arm, model version): counts, reward sums and the
/// decision log. Rewards are joined to the logged decision by (recommendation, product): the
/// flusher shards by recommendation id, so an exposure and its rewards meet in one shard.</summary>
/// <remarks>Two states, two write cadences: the counters (a few dozen bytes) at most every
/// <see cref="ControlOptions.StatsWriteInterval"/> (10 s), the decision log (~3 MB at 2,000 decisions) at most every
/// <see cref="ControlOptions.DecisionLogWriteInterval"/> (5 min); both at deactivation. Written with the counters, the
/// log cost a large-object-heap array per copy (serialized bytes, the in-memory store's copy) about every 2.5 s per
/// silo at 4 shards, 4.5 MB/s at 2,000 Recommends/s, and every gen-2 collection measured under that load was started
/// by the large-object budget (bench/RESULTS.md, "Exposure logging and GC survival").</remarks>
internal sealed class ArmStatsGrain(
    [PersistentState("armstats", ControlStorage.Name)] IPersistentState<ArmStatsState> state,
    [PersistentState("armlog", ControlStorage.Name)] IPersistentState<ArmLogState> logState,
    IOptions<ControlOptions> options, TimeProvider time) : Grain, IArmStatsGrain
{
    private readonly ControlOptions _options = options.Value;
    private DateTimeOffset _lastWrite = DateTimeOffset.MinValue;    // counters
    private DateTimeOffset _lastLogWrite = DateTimeOffset.MinValue; // decision log
    private IGrainTimer? _writeTimer;       // pending write of changes made since the last writes
    private DateTimeOffset _timerDue;       // when _writeTimer fires
    private bool _dirty;                    // counter changes not yet written
    private bool _logDirty;                 // decision-log changes not yet written

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var s = state.State;
        var old = s.DecisionLog;
        var log = logState.State.Log ?? old ?? new DecisionLog(_options.DecisionLogCapacity);
        if (log.Capacity != _options.DecisionLogCapacity) log = log.Resized(_options.DecisionLogCapacity);
        var moved = s.Log.Count > 0;
        if (moved) // a stored state of the list layout: moved over
        {
            foreach (var d in s.Log) log.Add(d);
            s.Log = [];
        }
        logState.State.Log = log;
        if (moved || old is not null)
        {
            // An earlier layout: the log is written to its own state first, then the counters without it, so a failure
            // in between leaves it stored twice, never lost.
            await logState.WriteStateAsync();
            s.DecisionLog = null;
            await state.WriteStateAsync();
        }
        await base.OnActivateAsync(cancellationToken);
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
                case FeedbackKind.Exposure: exposures++; _logDirty |= Log(signal, now); continue;
                case FeedbackKind.Click: clicks++; break;
                case FeedbackKind.AddToCart: carts++; break;
                case FeedbackKind.Purchase: purchases++; break;
                case FeedbackKind.Return: returns++; break;
            }
            var reward = _options.Rewards.For(signal.Kind);
            sum += reward;
            squares += reward * reward;
            _logDirty |= Join(signal, reward, now);
        }
        s.Counters = c.Add(new ArmCounters(assignments, exposures, clicks, carts, purchases, returns, sum, squares));
        _dirty = true;
        await WriteSoonAsync(now);
    }

    /// <summary>Writes the counters when their last write is older than <see cref="ControlOptions.StatsWriteInterval"/>
    /// and the decision log when its last write is older than <see cref="ControlOptions.DecisionLogWriteInterval"/>
    /// (each only when changed); what is not due yet is written by one timer when it is (see those options for why).</summary>
    private async Task WriteSoonAsync(DateTimeOffset now)
    {
        var interval = _options.StatsWriteInterval;
        if (_dirty && (interval <= TimeSpan.Zero || now - _lastWrite >= interval))
        {
            await WriteAsync();
            // The flusher applies to every shard of an arm at once, so shards that wrote now would write together
            // every interval after. Shard s of n moves its next write s/n of an interval earlier instead.
            _lastWrite -= interval * WritePhase();
        }
        var logInterval = _options.DecisionLogWriteInterval;
        if (_logDirty && (logInterval <= TimeSpan.Zero || now - _lastLogWrite >= logInterval))
        {
            await WriteLogAsync();
            _lastLogWrite -= logInterval * WritePhase(); // same staggering: each shard's log is ~3 MB
        }
        ScheduleWrite(now);
    }

    /// <summary>One timer for whichever pending write is due first (none when nothing is pending); a timer set for a
    /// later time (the log's, minutes away) is moved earlier when the counters become due first.</summary>
    private void ScheduleWrite(DateTimeOffset now)
    {
        if (!_dirty && !_logDirty) return;
        var due = DateTimeOffset.MaxValue;
        if (_dirty) due = _lastWrite + _options.StatsWriteInterval;
        if (_logDirty && _lastLogWrite + _options.DecisionLogWriteInterval < due) due = _lastLogWrite + _options.DecisionLogWriteInterval;
        if (_writeTimer is not null)
        {
            if (_timerDue <= due) return;
            _writeTimer.Dispose();
        }
        var wait = due - now;
        _timerDue = due;
        _writeTimer = this.RegisterGrainTimer(static (grain, _) => grain.WriteByTimerAsync(), this,
            new GrainTimerCreationOptions(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Timeout.InfiniteTimeSpan) { KeepAlive = false });
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
        try { await WriteSoonAsync(time.GetUtcNow()); }
        catch (Exception) { ScheduleRetry(); } // still dirty: the next timer tries again
    }

    /// <summary>After a failed timed write: try again in one counter interval (at least a second).</summary>
    private void ScheduleRetry()
    {
        if (_writeTimer is not null || (!_dirty && !_logDirty)) return;
        var wait = _options.StatsWriteInterval > TimeSpan.FromSeconds(1) ? _options.StatsWriteInterval : TimeSpan.FromSeconds(1);
        _timerDue = time.GetUtcNow() + wait;
        _writeTimer = this.RegisterGrainTimer(static (grain, _) => grain.WriteByTimerAsync(), this,
            new GrainTimerCreationOptions(wait, Timeout.InfiniteTimeSpan) { KeepAlive = false });
    }

    private async Task WriteAsync()
    {
        _dirty = false;
        _lastWrite = time.GetUtcNow();
        try { await state.WriteStateAsync(); }
        catch { _dirty = true; throw; }
    }

    private async Task WriteLogAsync()
    {
        _logDirty = false;
        _lastLogWrite = time.GetUtcNow();
        try { await logState.WriteStateAsync(); }
        catch { _logDirty = true; throw; }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _writeTimer?.Dispose();
        _writeTimer = null;
        if (_logDirty) await WriteLogAsync();
        if (_dirty) await WriteAsync();
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    private DecisionLog Ring => logState.State.Log!; // set on activation

    /// <summary>Logs an exposure (a replayed one changes nothing: false): its context bytes and product ids are copied
    /// into the compact log, so the signal and what it carries die young.</summary>
    private bool Log(FeedbackSignal exposure, DateTimeOffset now) =>
        Ring.Add(exposure.RecommendationId, exposure.Arm, exposure.ContextUtf8, exposure.Context,
            exposure.Timestamp == default ? now : exposure.Timestamp, exposure.Shadow, exposure.Actions);

    /// <summary>Joins a reward to the shown product it names (nothing when the decision is older than this shard's log
    /// or did not show that product: false).</summary>
    private bool Join(FeedbackSignal signal, double reward, DateTimeOffset now) =>
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
