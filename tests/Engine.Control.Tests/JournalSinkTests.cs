using Engine.Control.Catalog;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Engine.Control.Tests;

/// <summary>The silo's default event sink (cross-session group commit through the event journal), on
/// the in-memory journal: acknowledged events are visible at once, replayed by a session that never
/// saw them, applied once, and trimmed from the journal after the session checkpointed.</summary>
[Collection(ClusterCollection.Name)]
public class JournalSinkTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;
    private readonly IEventSink _sink = fixture.SiloServices.GetRequiredService<IEventSink>();
    private readonly IEventJournal _journal = fixture.SiloServices.GetRequiredService<IEventJournal>();
    private readonly JournalApplier _applier = fixture.SiloServices.GetRequiredService<JournalApplier>();
    private static readonly float[] East = [1, 0, 0, 0], North = [0, 1, 0, 0];

    private async Task<(string Shoe, string Hat)> TwoProducts()
    {
        var shoe = TestData.Id("shoe");
        var hat = TestData.Id("hat");
        await _client.GetGrain<IProductGrain>(shoe).Upsert(TestData.Product("Shoe", East));
        await _client.GetGrain<IProductGrain>(hat).Upsert(TestData.Product("Hat", North));
        return (shoe, hat);
    }

    private Task<SessionProfile> Profile(string customer) => _client.GetGrain<ICustomerSessionGrain>(customer).GetProfile();

    [Fact]
    public void The_silo_sink_is_the_journaling_one()
    {
        Assert.IsType<JournalEventSink>(_sink);
        Assert.IsType<MemoryEventJournal>(_journal);
    }

    [Fact]
    public async Task A_batch_of_one_event_per_shopper_is_acknowledged_and_read_back_at_once()
    {
        var (shoe, hat) = await TwoProducts();
        var customers = Enumerable.Range(0, 40).Select(_ => TestData.Id("c")).ToArray();
        var batch = customers.Select((c, i) => TestData.Event(c, i % 2 == 0 ? EventKind.AddToCart : EventKind.View, i % 2 == 0 ? shoe : hat)).ToArray();
        var outcomes = await _sink.RecordBatchAsync(batch);
        Assert.All(outcomes, o => Assert.Equal(EventOutcome.Accepted, o));
        // Read-your-writes: no wait for the applier; the read drains the journal first.
        for (var i = 0; i < customers.Length; i++)
        {
            var p = await Profile(customers[i]);
            Assert.Equal(1, p.EventsApplied);
            Assert.Equal([i % 2 == 0 ? shoe : hat], p.RecentItems);
            Assert.Equal(i % 2 == 0 ? 1 : 0, p.Cart.Count);
        }
    }

    [Fact]
    public async Task A_session_replays_journal_entries_it_never_received()
    {
        // As after a silo that journaled (and acknowledged) these and died before any session applied them.
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var t = DateTimeOffset.UtcNow;
        await _journal.AppendAsync([KeyValuePair.Create(customer, new[] { TestData.Event(customer, EventKind.View, hat, t), TestData.Event(customer, EventKind.AddToCart, shoe, t) })]);
        await _journal.AppendAsync([KeyValuePair.Create(customer, new[] { TestData.Event(customer, EventKind.Click, shoe, t) })]);
        var p = await Profile(customer);
        Assert.Equal(3, p.EventsApplied);
        Assert.Equal([shoe, hat], p.RecentItems);
        Assert.Equal(1, p.Cart[shoe]);
    }

    [Fact]
    public async Task A_read_applies_an_entry_that_was_journaled_but_not_delivered_beside_ones_that_were()
    {
        // The session was handed its first entries (the applier ran); then another entry lands in its
        // journal that no applier delivers (journaled by a silo that died at once). The read must not take
        // the count-only fast path past it.
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.View, shoe)]);
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.View, shoe)]);
        await _applier.ApplyPendingAsync();
        Assert.Equal(2, (await Profile(customer)).EventsApplied); // both delivered: the read moved past them
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.Click, shoe)]);
        await _applier.ApplyPendingAsync();
        await _journal.AppendAsync([KeyValuePair.Create(customer, new[] { TestData.Event(customer, EventKind.View, hat) })]); // never delivered
        var p = await Profile(customer);
        Assert.Equal(4, p.EventsApplied);
        Assert.Equal([hat, shoe], p.RecentItems);
        // And once more through the sink after it: still every event once.
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.AddToCart, shoe)]);
        Assert.Equal(5, (await Profile(customer)).EventsApplied);
    }

    [Fact]
    public async Task Duplicate_event_ids_through_the_journal_are_applied_once()
    {
        var (shoe, _) = await TwoProducts();
        var customer = TestData.Id("c");
        var e = TestData.Event(customer, EventKind.AddToCart, shoe);
        Assert.Equal([EventOutcome.Accepted, EventOutcome.Duplicate], await _sink.RecordBatchAsync([e, e]));
        // A resend after a lost ack: journaled again, answered Accepted, applied once.
        Assert.Equal(EventOutcome.Accepted, await _sink.RecordAsync(e));
        var p = await Profile(customer);
        Assert.Equal(1, p.EventsApplied);
        Assert.Equal(1, p.Cart[shoe]);
        // The direct session path knows it too.
        Assert.Equal(EventOutcome.Duplicate, await _client.GetGrain<ICustomerSessionGrain>(customer).Record(e));
    }

    [Fact]
    public async Task An_out_of_order_batch_counts_decayed_and_does_not_move_the_clock_back()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var t = DateTimeOffset.UtcNow;
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.Click, hat, t)]);
        // A later batch carries older events (two clicks on the shoe two hours = 4 half-lives earlier).
        await _sink.RecordBatchAsync([TestData.Event(customer, EventKind.Click, shoe, t.AddHours(-2)), TestData.Event(customer, EventKind.Click, shoe, t.AddHours(-2))]);
        var p = await Profile(customer);
        Assert.Equal(3, p.EventsApplied);
        Assert.Equal(t.UtcTicks, p.LastEventAt!.Value.UtcTicks);
        Assert.True(p.Profile[1] > 4 * p.Profile[0], $"profile {string.Join(", ", p.Profile)}");
    }

    [Fact]
    public async Task Malformed_and_unknown_product_events_are_answered_and_not_journaled()
    {
        var customer = TestData.Id("c");
        var outcomes = await _sink.RecordBatchAsync([
            TestData.Event(customer, EventKind.View, "no-such-product"),
            TestData.Event(customer, EventKind.Click, null),
            TestData.Event("", EventKind.SearchNoResults, null),
            TestData.Event(customer, EventKind.Purchase, "x", quantity: 0),
            TestData.Event(customer, EventKind.SearchNoResults, null),
        ]);
        Assert.Equal([EventOutcome.UnknownProduct, EventOutcome.Invalid, EventOutcome.Invalid, EventOutcome.Invalid, EventOutcome.Accepted], outcomes);
        var entries = await _journal.ReadAsync(customer, JournalPosition.Start, 10);
        Assert.Equal(EventKind.SearchNoResults, Assert.Single(Assert.Single(entries).Events).Kind);
        Assert.Equal(1, (await Profile(customer)).EventsApplied);
    }

    [Fact]
    public async Task Sessions_apply_and_checkpoint_without_a_read_and_then_the_journal_is_trimmed()
    {
        var (shoe, _) = await TwoProducts();
        var customers = Enumerable.Range(0, 8).Select(_ => TestData.Id("c")).ToArray();
        await _sink.RecordBatchAsync(customers.Select(c => TestData.Event(c, EventKind.View, shoe)).ToArray());
        // No read: the silo's applier has each session drain, the session checkpoints after 300 ms
        // (fixture) and only then trims its journal.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        foreach (var c in customers)
        {
            while ((await _journal.ReadAsync(c, JournalPosition.Start, 10)).Count > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"journal of {c} not trimmed within 20 s");
                await Task.Delay(50);
            }
            Assert.Equal(1, (await Profile(c)).EventsApplied);
        }
    }
}
