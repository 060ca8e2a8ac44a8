using Engine.Control.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engine.Control.Sessions;

/// <summary>Applies journaled events to their sessions after the sink acknowledged them: every
/// <see cref="ControlOptions.JournalApplyInterval"/> it hands each customer that received events since
/// the last pass the entries this silo wrote (<see cref="ICustomerSessionGrain.ApplyEntries"/>: no
/// journal read), one call per customer per pass however many events arrived; a customer with no
/// entries at hand (recovery, a failed call) is told to drain its journal
/// (<see cref="ICustomerSessionGrain.ApplyJournal"/>). At silo start it first enqueues every customer whose
/// journal still holds entries (a silo that died before its sessions checkpointed), so their sessions
/// replay, checkpoint and trim. Runs while the silo is Active; a failed call is retried next pass
/// (the events stay in the journal, and any read of that session drains it anyway).</summary>
internal sealed class JournalApplier(IGrainFactory grains, IEventJournal journal, IOptions<ControlOptions> options, ILogger<JournalApplier> log)
    : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>Calls in flight at once per pass: bounds the burst a pass sends into the silo.</summary>
    private const int MaxConcurrentCalls = 1024;

    private readonly ControlOptions _options = options.Value;
    private readonly Lock _gate = new();
    private Dictionary<string, List<JournalEntry>?> _pending = []; // null: drain from the journal
    private CancellationTokenSource? _stop;
    private long _passes, _calls, _passTicks;
    private long _backlog; // entries handed to the applier and not yet applied by a finished pass (under _gate)
    private TaskCompletionSource? _room; // completed at the end of a pass, for sinks waiting on a full backlog

    /// <summary>Passes that had work, the session calls they made, and their summed duration (for benchmarks: a
    /// pass that takes longer than the interval means the sessions lag behind the acknowledged events).</summary>
    public (long Passes, long Calls, TimeSpan Busy) Progress =>
        (Interlocked.Read(ref _passes), Interlocked.Read(ref _calls), TimeSpan.FromTicks(Interlocked.Read(ref _passTicks)));
    private Task? _loop;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(JournalApplier), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    /// <summary>Customers whose journal got entries this silo does not hold: their sessions drain on the next pass.</summary>
    public void Enqueue(IEnumerable<string> customers)
    {
        lock (_gate) foreach (var c in customers) _pending[c] = null;
    }

    /// <summary>An entry this silo just wrote: handed to the session on the next pass.</summary>
    public void Enqueue(string customer, JournalEntry entry)
    {
        lock (_gate)
        {
            _backlog++;
            if (!_pending.TryGetValue(customer, out var entries)) _pending[customer] = [entry];
            else entries?.Add(entry); // null: a drain is due anyway, and it reads this entry too
        }
    }

    /// <summary>Entries journaled on this silo that no finished pass has applied yet.</summary>
    public long Backlog { get { lock (_gate) return _backlog; } }

    /// <summary>Completes at once while the backlog is at most <see cref="ControlOptions.JournalApplyBacklog"/>
    /// entries, else once passes have brought it back under. The sink awaits this after its journal write (the
    /// events are durable either way): backpressure, so that a silo acknowledging faster than its sessions apply
    /// slows its callers down instead of holding an ever larger backlog in memory (closed-loop ingestion with
    /// 20,000 shoppers acknowledged ahead of passes that took longer than the whole measured window).</summary>
    public async ValueTask WaitForRoomAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task room;
            lock (_gate)
            {
                if (_backlog <= _options.JournalApplyBacklog || _stop is null || _stop.IsCancellationRequested) return;
                room = (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
            await room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

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
        await ApplyPendingAsync(); // sessions still deactivate (and checkpoint) after this
    }

    private async Task LoopAsync(CancellationToken stop)
    {
        try
        {
            await foreach (var customer in journal.PendingCustomersAsync(stop))
                Enqueue([customer]);
        }
        catch (OperationCanceledException) { return; }
        catch (Exception ex)
        {
            log.LogWarning(ex, "event journal recovery scan ({Journal}) failed; sessions with unapplied entries replay them when next used", journal.Description);
        }
        using var timer = new PeriodicTimer(_options.JournalApplyInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop)) await ApplyPendingAsync();
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>One pass: every pending customer's session drains its journal.</summary>
    public async Task ApplyPendingAsync()
    {
        Dictionary<string, List<JournalEntry>?> taken;
        lock (_gate)
        {
            if (_pending.Count == 0) return;
            taken = _pending;
            _pending = [];
        }
        var handed = taken.Values.Sum(e => e?.Count ?? 0);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var failed = 0;
        Exception? first = null;
        // A sliding window of calls, not chunks waited for in turn: one slow session no longer holds up the
        // other 1,023 calls of its chunk.
        using var window = new SemaphoreSlim(MaxConcurrentCalls);
        await Task.WhenAll(taken.Select(async pending =>
        {
            await window.WaitAsync().ConfigureAwait(false);
            var (customer, entries) = pending;
            var session = grains.GetGrain<ICustomerSessionGrain>(customer);
            try { await (entries is null ? session.ApplyJournal() : session.ApplyEntries(entries.ToArray())); }
            catch (Exception ex)
            {
                Interlocked.Increment(ref failed);
                Interlocked.CompareExchange(ref first, ex, null);
                Enqueue([customer]);
            }
            finally { window.Release(); }
        }));
        TaskCompletionSource? room;
        lock (_gate)
        {
            // Failed calls were re-enqueued as drains (counted 0 entries): the journal holds them.
            _backlog = Math.Max(0, _backlog - handed);
            room = _room;
            _room = null;
        }
        room?.SetResult();
        Interlocked.Increment(ref _passes);
        Interlocked.Add(ref _calls, taken.Count);
        Interlocked.Add(ref _passTicks, System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks);
        if (failed > 0)
            log.LogWarning(first, "{Failed} of {Count} sessions could not apply their journal entries; retrying next pass (the events are durable in the journal)", failed, taken.Count);
    }
}
