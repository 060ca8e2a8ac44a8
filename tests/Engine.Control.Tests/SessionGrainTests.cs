using Engine.Control.Catalog;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

[Collection(ClusterCollection.Name)]
public class SessionGrainTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;
    private static readonly float[] East = [1, 0, 0, 0], North = [0, 1, 0, 0];

    private async Task<(string Shoe, string Hat)> TwoProducts()
    {
        var shoe = TestData.Id("shoe");
        var hat = TestData.Id("hat");
        await _client.GetGrain<IProductGrain>(shoe).Upsert(TestData.Product("Shoe", East));
        await _client.GetGrain<IProductGrain>(hat).Upsert(TestData.Product("Hat", North));
        return (shoe, hat);
    }

    [Fact]
    public async Task Profile_leans_toward_the_products_with_stronger_intent()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var t = DateTimeOffset.UtcNow;
        Assert.Equal(EventOutcome.Accepted, await session.Record(TestData.Event(customer, EventKind.View, hat, t)));
        Assert.Equal(EventOutcome.Accepted, await session.Record(TestData.Event(customer, EventKind.AddToCart, shoe, t)));
        var p = await session.GetProfile();
        Assert.Equal(1.0, Math.Sqrt(p.Profile.Sum(x => x * x)), 5);
        Assert.True(p.Profile[0] > p.Profile[1], "add to cart (weight 4) outweighs a view (weight 1)");
        Assert.Equal([shoe, hat], p.RecentItems);
        Assert.Equal(1, p.Cart[shoe]);
        Assert.Equal(2, p.EventsApplied);
    }

    [Fact]
    public async Task Profile_vector_is_the_profile_of_GetProfile_through_a_reference_built_from_its_grain_id()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var other = TestData.Id("c");
        _ = _client.Session(other); // the first call resolves the grain and interface types
        var session = _client.Session(customer);
        Assert.Equal(((GrainReference)_client.GetGrain<ICustomerSessionGrain>(customer)).GrainId, ((GrainReference)session).GrainId);
        Assert.Empty((await session.GetProfileVector()).Value); // no product event yet
        var t = DateTimeOffset.UtcNow;
        await session.Record(TestData.Event(customer, EventKind.View, hat, t));
        await session.Record(TestData.Event(customer, EventKind.Click, shoe, t));
        var vector = (await session.GetProfileVector()).Value;
        Assert.Equal((await session.GetProfile()).Profile, vector);
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => x * x)), 5);
        Assert.Empty((await _client.Session(other).GetProfileVector()).Value);
    }

    [Fact]
    public async Task Older_interactions_decay()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var t = DateTimeOffset.UtcNow;
        // Two clicks on the shoe two hours (4 half-lives) before one click on the hat: 2/16 < 1.
        await session.Record(TestData.Event(customer, EventKind.Click, shoe, t.AddHours(-2)));
        await session.Record(TestData.Event(customer, EventKind.Click, shoe, t.AddHours(-2)));
        await session.Record(TestData.Event(customer, EventKind.Click, hat, t));
        var p = await session.GetProfile();
        Assert.True(p.Profile[1] > 4 * p.Profile[0]);
    }

    [Fact]
    public async Task Out_of_order_events_count_decayed_and_do_not_move_the_clock_back()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var t = DateTimeOffset.UtcNow;
        await session.Record(TestData.Event(customer, EventKind.Click, hat, t));
        await session.Record(TestData.Event(customer, EventKind.Click, shoe, t.AddHours(-2))); // arrives late
        var p = await session.GetProfile();
        Assert.Equal(t.UtcTicks, p.LastEventAt!.Value.UtcTicks);
        Assert.True(p.Profile[1] > 4 * p.Profile[0]);
    }

    [Fact]
    public async Task Duplicate_event_ids_are_applied_once()
    {
        var (shoe, _) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var e = TestData.Event(customer, EventKind.AddToCart, shoe);
        Assert.Equal(EventOutcome.Accepted, await session.Record(e));
        Assert.Equal(EventOutcome.Duplicate, await session.Record(e));
        Assert.Equal([EventOutcome.Duplicate, EventOutcome.Duplicate], await session.RecordBatch([e, e]));
        var p = await session.GetProfile();
        Assert.Equal(1, p.EventsApplied);
        Assert.Equal(1, p.Cart[shoe]);
    }

    [Fact]
    public async Task Unknown_products_and_malformed_events_are_refused()
    {
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        Assert.Equal(EventOutcome.UnknownProduct, await session.Record(TestData.Event(customer, EventKind.View, "no-such-product")));
        Assert.Equal(EventOutcome.Invalid, await session.Record(TestData.Event(customer, EventKind.Click, null)));
        Assert.Equal(EventOutcome.Invalid, await session.Record(TestData.Event("someone-else", EventKind.SearchNoResults, null)));
        Assert.Equal(EventOutcome.Invalid, await session.Record(TestData.Event(customer, EventKind.Purchase, "x", quantity: 0)));
        Assert.Equal(EventOutcome.Accepted, await session.Record(TestData.Event(customer, EventKind.SearchNoResults, null)));
        Assert.Equal(1, (await session.GetProfile()).EventsApplied);
    }

    [Fact]
    public async Task Cart_follows_adds_removes_and_purchases_and_is_abandoned_when_idle()
    {
        var (shoe, hat) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var longAgo = DateTimeOffset.UtcNow.AddHours(-3);
        await session.RecordBatch([
            TestData.Event(customer, EventKind.AddToCart, shoe, longAgo, quantity: 2),
            TestData.Event(customer, EventKind.AddToCart, hat, longAgo),
            TestData.Event(customer, EventKind.RemoveFromCart, shoe, longAgo),
            TestData.Event(customer, EventKind.Purchase, hat, longAgo),
        ]);
        var p = await session.GetProfile();
        Assert.Equal(new Dictionary<string, int> { [shoe] = 1 }, p.Cart);
        Assert.True(p.CartAbandoned, "a non-empty cart idle for 3 hours is abandoned");

        await session.Record(TestData.Event(customer, EventKind.View, hat));
        Assert.False((await session.GetProfile()).CartAbandoned);
    }

    [Fact]
    public async Task Concurrent_events_are_all_acknowledged_and_applied()
    {
        var (shoe, _) = await TwoProducts();
        var customer = TestData.Id("c");
        var session = _client.GetGrain<ICustomerSessionGrain>(customer);
        var events = Enumerable.Range(0, 64).Select(_ => TestData.Event(customer, EventKind.View, shoe)).ToArray();
        var outcomes = await Task.WhenAll(events.Select(e => session.Record(e)));
        Assert.All(outcomes, o => Assert.Equal(EventOutcome.Accepted, o));
        Assert.Equal(64, (await session.GetProfile()).EventsApplied);
    }

    [Fact]
    public async Task Event_sink_routes_a_mixed_batch_and_keeps_input_order()
    {
        var (shoe, _) = await TwoProducts();
        var a = TestData.Id("a");
        var b = TestData.Id("b");
        IEventSink sink = new GrainEventSink(_client);
        var dup = TestData.Event(a, EventKind.View, shoe);
        var outcomes = await sink.RecordBatchAsync([dup, TestData.Event(b, EventKind.View, "missing"), dup, TestData.Event(b, EventKind.Click, shoe)]);
        Assert.Equal([EventOutcome.Accepted, EventOutcome.UnknownProduct, EventOutcome.Duplicate, EventOutcome.Accepted], outcomes);
    }
}
