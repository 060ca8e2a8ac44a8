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
            if (!_pending.TryGetValue(customer, out var entries)) _pending[customer] = [entry];
            else entries?.Add(entry); // null: a drain is due anyway, and it reads this entry too
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
        var failed = 0;
        Exception? first = null;
        foreach (var chunk in taken.Chunk(MaxConcurrentCalls))
        {
            await Task.WhenAll(chunk.Select(async pending =>
            {
                var (customer, entries) = pending;
                var session = grains.GetGrain<ICustomerSessionGrain>(customer);
                try { await (entries is null ? session.ApplyJournal() : session.ApplyEntries(entries.ToArray())); }
                catch (Exception ex)
                {
                    Interlocked.Increment(ref failed);
                    Interlocked.CompareExchange(ref first, ex, null);
                    Enqueue([customer]);
                }
            }));
        }
        if (failed > 0)
            log.LogWarning(first, "{Failed} of {Count} sessions could not apply their journal entries; retrying next pass (the events are durable in the journal)", failed, taken.Count);
    }
}
