using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>The sessions' checkpoint policy on the journal path: a session checkpoints once
/// <see cref="ControlOptions.SessionCheckpointEntries"/> journal entries are applied (length) or
/// <see cref="ControlOptions.SessionCheckpointInterval"/> after its first unwritten change (age), not per event
/// (own silo: it needs a counting store; the age bound here is an hour, so only the length bound can fire); and the
/// applier's timed passes, which hand a customer's entries over once there are <see cref="ControlOptions.JournalApplyMinEntries"/>
/// or the oldest waited <see cref="ControlOptions.JournalApplyMaxDelay"/>.</summary>
public sealed class CheckpointPolicyTests : OwnSiloTests<CheckpointPolicyTests.Configurator>
{
    private const int Entries = 4;
    private const int MinEntries = 3;
    private static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task A_session_checkpoints_once_per_length_bound_of_entries_and_trims_what_it_wrote()
    {
        var product = TestData.Id("p");
        await Cluster.Client.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Shoe", [1, 0, 0, 0]));
        var sink = Silo.GetRequiredService<IEventSink>();
        var applier = Silo.GetRequiredService<JournalApplier>();
        var journal = Silo.GetRequiredService<IEventJournal>();
        var customer = TestData.Id("c");

        // One entry per sink call, handed over one per applier pass, until the session writes: the activation's
        // bound lies in [Entries/2, Entries], so the first write comes after that many entries, holding all of
        // them, and the journal is then trimmed through them.
        var sent = await SendUntilWritten(sink, applier, customer, product, writes: 1);
        Assert.InRange(sent, Entries / 2, Entries);
        Assert.Equal(sent, RecordingGrainStorage.Last(customer));
        await WaitUntil(async () => await journal.CountAsync(customer) == 0);

        // The same bound again (drawn once per activation): the second write after as many more entries.
        Assert.Equal(sent, await SendUntilWritten(sink, applier, customer, product, writes: 2));
        Assert.Equal(2 * sent, RecordingGrainStorage.Last(customer));
        await WaitUntil(async () => await journal.CountAsync(customer) == 0);

        // Fewer than the bound: they stay in memory and journal (the age bound is an hour), and a read sees them.
        await sink.RecordAsync(TestData.Event(customer, EventKind.View, product));
        await applier.ApplyPendingAsync();
        await Task.Delay(300);
        Assert.Equal(2, RecordingGrainStorage.Count(customer));
        Assert.Equal(1, await journal.CountAsync(customer));
        Assert.Equal(2 * sent + 1, (await Cluster.Client.GetGrain<ICustomerSessionGrain>(customer).GetProfile()).EventsApplied);
    }

    [Fact]
    public async Task A_timed_pass_holds_a_few_entries_back_until_there_are_enough_or_the_oldest_is_old_enough()
    {
        var product = TestData.Id("p");
        await Cluster.Client.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Shoe", [1, 0, 0, 0]));
        var sink = Silo.GetRequiredService<IEventSink>();
        var applier = Silo.GetRequiredService<JournalApplier>();
        var (few, enough) = (TestData.Id("few"), TestData.Id("enough"));
        for (var i = 0; i < MinEntries - 1; i++) await sink.RecordAsync(TestData.Event(few, EventKind.View, product));
        for (var i = 0; i < MinEntries; i++) await sink.RecordAsync(TestData.Event(enough, EventKind.View, product));
        Assert.Equal(2 * MinEntries - 1, applier.Backlog);

        // A timed pass hands over the customer with enough entries and keeps the other's.
        var calls = applier.Progress.Calls;
        await applier.ApplyPendingAsync(dueOnly: true);
        Assert.Equal((MinEntries - 1L, calls + 1), (applier.Backlog, applier.Progress.Calls));

        // Once its oldest entry has waited JournalApplyMaxDelay, the next timed pass hands it over too.
        await Task.Delay(MaxDelay + TimeSpan.FromMilliseconds(100));
        await applier.ApplyPendingAsync(dueOnly: true);
        Assert.Equal((0L, calls + 2), (applier.Backlog, applier.Progress.Calls));
        // Held back or not, every acknowledged event is in its session (a read drains anyway).
        Assert.Equal(MinEntries - 1, (await Cluster.Client.GetGrain<ICustomerSessionGrain>(few).GetProfile()).EventsApplied);
        Assert.Equal(MinEntries, (await Cluster.Client.GetGrain<ICustomerSessionGrain>(enough).GetProfile()).EventsApplied);
    }

    /// <summary>Sends one event per sink call (each its own journal entry) until the store has seen <paramref name="writes"/>
    /// writes of the session; returns how many were sent. Fails past twice the bound.</summary>
    private static async Task<int> SendUntilWritten(IEventSink sink, JournalApplier applier, string customer, string product, int writes)
    {
        for (var sent = 1; sent <= 2 * Entries; sent++)
        {
            await sink.RecordAsync(TestData.Event(customer, EventKind.View, product));
            await applier.ApplyPendingAsync();
            // The checkpoint runs on a timer turn after the call: give it time before sending the next entry (a
            // ceiling for a loaded 2-core machine: a checkpoint later than this would make the count one too high).
            // Below the lowest bound the activation can draw no checkpoint is due, so those entries wait only briefly
            // (a checkpoint that came anyway is still seen: it holds fewer than Entries / 2 and fails the range check).
            var wait = sent < Entries / 2 ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(2);
            var deadline = DateTime.UtcNow + wait;
            while (RecordingGrainStorage.Count(customer) < writes && DateTime.UtcNow < deadline) await Task.Delay(10);
            if (RecordingGrainStorage.Count(customer) >= writes) return sent;
        }
        throw new Xunit.Sdk.XunitException($"no checkpoint after {2 * Entries} entries (length bound {Entries})");
    }

    private static async Task WaitUntil(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException("condition not met within 10 s");
            await Task.Delay(20);
        }
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is SessionState s ? s.EventsApplied : null));
            silo.Services.AddControlServices(o =>
            {
                o.SessionCheckpointEntries = Entries;
                o.SessionCheckpointInterval = TimeSpan.FromHours(1);
                o.JournalApplyInterval = TimeSpan.FromHours(1); // the test hands entries over itself (ApplyPendingAsync)
                o.JournalApplyMinEntries = MinEntries;
                o.JournalApplyMaxDelay = MaxDelay;
            });
        }
    }
}
