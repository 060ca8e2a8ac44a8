using Engine.Control.Feedback;
using Engine.Control.Storage;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Sessions;

/// <summary>The journal side of a session: apply entries the silo hands over (ApplyEntries) or drain
/// (replay) entries after the stored position, in memory; checkpoint later, then trim what the
/// checkpoint covers.</summary>
/// <remarks>Checkpoint policy: once <see cref="ControlOptions.SessionCheckpointEntries"/> entries were applied
/// since the last checkpoint began (length), or <see cref="ControlOptions.SessionCheckpointInterval"/> after the
/// first change not yet checkpointed (age), whichever comes first. A checkpoint costs about the same whatever it
/// covers, so with many active shoppers an age-only policy checkpointed every couple of events.</remarks>
/// <remarks>Checkpoint discipline: the stored state's <see cref="SessionState.Journal"/> names the last
/// entry it includes; a checkpoint writes the state, and only after that write succeeded trims the
/// journal through the position the written state held. So every entry is in the stored state or in
/// the journal (or both, between write and trim: replay skips applied ids), and a silo killed at any
/// point loses nothing the sink acknowledged.</remarks>
internal sealed partial class CustomerSessionGrain
{
    private IGrainTimer? _checkpointTimer; // registered once, armed by Change (see CheckpointTimer)
    private bool _checkpointArmed;
    private JournalPosition _trimmed; // journal trimmed through here by this activation
    // Entries after S.Journal already applied from ApplyEntries: a drain moves the position past them
    // without applying them again (so this does not lean on the event-id window).
    private readonly SortedSet<JournalPosition> _delivered = [];
    private int _uncheckpointed; // entries applied since the last checkpoint began (the length bound)
    private bool _checkpointSoon; // the timer was moved to fire now (the length bound was reached)
    private int _lengthBound = -1; // this activation's draw of the length bound (-1: not drawn yet)

    /// <summary>This activation's length bound: drawn once in [N/2, N] for N = <see cref="ControlOptions.SessionCheckpointEntries"/>
    /// (0: none). Sessions that start together and get events at the same pace (a benchmark's round robin, a
    /// campaign's burst) would otherwise all reach N in the same instant and checkpoint in one herd (20,000 state
    /// writes at once held ingestion up in `Engine.Benchmarks ingest`); the spread keeps them apart from then on.</summary>
    private int LengthBound => _lengthBound >= 0 ? _lengthBound
        : _lengthBound = _options.SessionCheckpointEntries <= 0 ? 0 : _options.SessionCheckpointEntries - Random.Shared.Next(_options.SessionCheckpointEntries / 2 + 1);

    Task ICustomerSessionGrain.ApplyJournal() => DrainAsync();

    async Task ICustomerSessionGrain.ApplyEntries(IReadOnlyList<JournalEntry> entries)
    {
        var vectors = await VectorsFor(entries);
        var signals = new List<FeedbackSignal>();
        var views = new List<string>();
        var accepted = 0;
        foreach (var entry in entries)
        {
            // Checked after the await: a drain may have applied it meanwhile.
            if (entry.Position.CompareTo(S.Journal) <= 0 || !_delivered.Add(entry.Position)) continue;
            _uncheckpointed++;
            accepted += ApplyEntry(entry, vectors, signals, views);
        }
        _commit.MarkDirty();
        if (accepted > 0 || signals.Count > 0) Report(signals, accepted, views);
        ScheduleCheckpoint();
    }

    /// <summary>Embeddings of an entry list's products, fetched before applying so that applying is one synchronous turn.</summary>
    private async Task<Dictionary<string, float[]?>> VectorsFor(IReadOnlyList<JournalEntry> entries)
    {
        var vectors = new Dictionary<string, float[]?>();
        foreach (var entry in entries)
            foreach (var e in entry.Events)
                if (e is { NeedsProduct: true, ProductId: { Length: > 0 } pid } && !vectors.ContainsKey(pid))
                    vectors[pid] = await _embeddings.GetAsync(pid);
        return vectors;
    }

    /// <summary>Applies one entry's events; returns how many were accepted (duplicates change nothing).</summary>
    private int ApplyEntry(JournalEntry entry, Dictionary<string, float[]?> vectors, List<FeedbackSignal> signals, List<string> views)
    {
        var accepted = 0;
        foreach (var e in entry.Events)
        {
            var vector = e is { NeedsProduct: true, ProductId: { Length: > 0 } pid } ? vectors.GetValueOrDefault(pid) : null;
            if (Apply(e, vector, signals) != EventOutcome.Accepted) continue;
            accepted++;
            if (e.Kind == EventKind.View) views.Add(e.ProductId!);
        }
        return accepted;
    }

    /// <summary>Completes once a drain that started after this call has applied every entry journaled so far.</summary>
    private Task DrainAsync()
    {
        _drain.MarkDirty();
        return _drain.CommitAsync();
    }

    private async Task DrainOnceAsync()
    {
        var customer = CustomerKey;
        // Fast path: the journal's entries after S.Journal up to the newest delivered one are exactly the entries
        // this activation was handed, so they need not be read back and deserialized just to move the position:
        // one count in the store instead of a read of every entry since the last checkpoint (what most
        // checkpoints and profile reads found). Every delivered entry is after S.Journal and in the journal
        // (only this session trims, and only through S.Journal), so equal counts mean the same entries. The
        // delivered set is taken before the count; one delivered while it runs is either counted (the counts
        // differ: slow path) or after the range. Entries after the range (appended, not delivered yet: a busy
        // session always has some on their way) are read below, and only they.
        var delivered = _delivered.Count;
        var last = delivered > 0 ? _delivered.Max : S.Journal;
        var span = await _journal.CountAsync(customer, S.Journal, last, delivered);
        if (span.InRange == delivered)
        {
            if (delivered > 0)
            {
                S.Journal = JournalPosition.Max(S.Journal, last);
                _delivered.RemoveWhere(p => p.CompareTo(S.Journal) <= 0);
                _commit.MarkDirty();
                ScheduleCheckpoint();
            }
            if (!span.Beyond) return;
        }
        while (true)
        {
            var entries = await _journal.ReadAsync(customer, S.Journal, _options.JournalReadBatch);
            if (entries.Count == 0) return;
            var vectors = await VectorsFor(entries);
            var signals = new List<FeedbackSignal>();
            var views = new List<string>();
            var accepted = 0;
            foreach (var entry in entries)
            {
                if (entry.Position.CompareTo(S.Journal) <= 0) continue;
                // Delivered entries were applied already; duplicates (a retried event, or one a direct
                // Record applied) change nothing either.
                if (!_delivered.Remove(entry.Position))
                {
                    _uncheckpointed++;
                    accepted += ApplyEntry(entry, vectors, signals, views);
                }
                S.Journal = entry.Position;
            }
            _delivered.RemoveWhere(p => p.CompareTo(S.Journal) <= 0);
            _commit.MarkDirty(); // the position moved even if every event was a duplicate
            if (accepted > 0 || signals.Count > 0) Report(signals, accepted, views);
            ScheduleCheckpoint();
            if (entries.Count < _options.JournalReadBatch) return;
        }
    }

    /// <summary>A one-shot timer: journal-applied changes are written once per interval (age) or once
    /// <see cref="ControlOptions.SessionCheckpointEntries"/> entries are applied (length), not per event.
    /// The length bound fires the timer at once rather than checkpointing inside the caller's turn, so the
    /// applier's call does not wait for the store.</summary>
    private void ScheduleCheckpoint()
    {
        var full = LengthBound > 0 && _uncheckpointed >= LengthBound;
        if (_checkpointArmed)
        {
            if (full && !_checkpointSoon)
            {
                _checkpointSoon = true;
                _checkpointTimer!.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
            return;
        }
        _checkpointArmed = true;
        _checkpointSoon = full;
        (_checkpointTimer ??= CheckpointTimer(static grain => grain.CheckpointAsync()))
            .Change(full ? TimeSpan.Zero : SpreadDelay(_options.SessionCheckpointInterval), Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// A one-shot checkpoint timer, registered unarmed and armed with <see cref="IGrainTimer.Change"/> each time: a timer
    /// registered per arming (and disposed when it fired) was half a dozen runtime objects per session a minute, kept for
    /// the interval and so collected in gen 2. Interleaved (the session is reentrant anyway) and not keeping the
    /// activation alive.
    /// </summary>
    private IGrainTimer CheckpointTimer(Func<CustomerSessionGrain, Task> callback) =>
        this.RegisterGrainTimer(static (state, _) => state.Callback(state.Grain), (Grain: this, Callback: callback),
            new GrainTimerCreationOptions(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = false });

    /// <summary>A checkpoint delay drawn uniformly in [interval/2, interval]: sessions whose changes began together (a
    /// server start, a campaign sending every shopper a list) spread their writes instead of all writing in the same
    /// second every interval, a burst whose gen-0 collections took 10–30 ms instead of ~5 (bench/RESULTS.md, eighth
    /// session). The interval stays the longest a change waits.</summary>
    internal static TimeSpan SpreadDelay(TimeSpan interval) => interval * (1 - 0.5 * Random.Shared.NextDouble());

    private async Task CheckpointAsync()
    {
        _checkpointArmed = false;
        _checkpointSoon = false;
        // Everything applied so far rides on this checkpoint (the drain and write below start after it). If it
        // fails, the retry waits the interval (not the length bound), so a store outage is not hammered.
        _uncheckpointed = 0;
        try
        {
            // Drain first: it moves the stored position past the delivered entries, so replay after
            // this checkpoint starts after them and the trim below covers them.
            await DrainAsync();
            await CommitAsync();
        }
        catch (Exception ex)
        {
            _log.LogWarning(ex, "session {Customer}: checkpoint failed; retrying in {Interval} (the events stay in the journal)", this.GetPrimaryKeyString(), _options.SessionCheckpointInterval);
            ScheduleCheckpoint();
        }
    }

    /// <summary>The group-committed write: the state, then the journal trimmed through the position
    /// that state includes. A failed trim only leaves entries to skip on replay.</summary>
    private async Task WriteCheckpointAsync()
    {
        var through = S.Journal;
        await _state.WriteStateAsync();
        if (through.CompareTo(_trimmed) <= 0) return;
        try
        {
            await _journal.TrimAsync(CustomerKey, through);
            _trimmed = through;
        }
        catch (Exception ex)
        {
            _log.LogWarning(ex, "session {Customer}: journal trim through {Position} failed; the next checkpoint trims again", this.GetPrimaryKeyString(), through);
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _checkpointTimer?.Dispose();
        _checkpointTimer = null;
        _checkpointArmed = false;
        _exposureCheckpointTimer?.Dispose();
        _exposureCheckpointTimer = null;
        _exposureCheckpointArmed = false;
        try
        {
            await DrainAsync();
            await CommitAsync();
        }
        catch (Exception ex)
        {
            // Nothing is lost: what this activation did not write is still in the journal.
            _log.LogWarning(ex, "session {Customer}: final checkpoint at deactivation ({Reason}) failed; the next activation replays the journal", this.GetPrimaryKeyString(), reason.Description);
        }
        await base.OnDeactivateAsync(reason, cancellationToken);
    }
}
