using Engine.Control.Catalog;
using Engine.Control.Sessions;
using StackExchange.Redis;

namespace Engine.Control.Tests.Redis;

/// <summary>The event journal on a real Redis: what a silo acknowledged but never checkpointed is
/// replayed by the next silo, which then checkpoints and trims the journal.</summary>
[Collection(SiloCollection.Name)]
public class JournalReplayTests
{
    private const int Customers = 12;
    private const int Rounds = 5;

    [RequiresRedisBinaryFact]
    public async Task Events_acknowledged_by_a_silo_that_never_checkpointed_are_replayed_by_the_next_silo()
    {
        using var redis = new PrivateRedis(); // fsync on every write
        redis.Start();
        var service = TestData.Id("journal");
        var product = TestData.Id("p");
        var customers = Enumerable.Range(0, Customers).Select(i => $"{service}-c{i}").ToArray();

        // Silo A acknowledges events but never checkpoints a session (the interval is an hour), as a
        // silo killed before its first checkpoint.
        await using var a = await TestSilo.StartAsync(redis.Connection, TestData.Id("a"), serviceId: service,
            configure: o => o.SessionCheckpointInterval = TimeSpan.FromHours(1));
        await a.Grains.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Boot", [1, 0, 0]));
        var t = DateTimeOffset.UtcNow;
        for (var round = 0; round < Rounds; round++)
        {
            // One event per shopper per batch: the server's shape.
            var outcomes = await a.Events.RecordBatchAsync(customers.Select(c => TestData.Event(c, EventKind.View, product, t.AddSeconds(round))).ToArray());
            Assert.All(outcomes, o => Assert.Equal(EventOutcome.Accepted, o));
        }

        // Silo B: another cluster on the same service id, i.e. the same grain state and journal, with
        // its own activations: they load the (never written) state and must replay the journal. Its
        // recovery scan also finds the pending journals and has them checkpointed and trimmed.
        await using var b = await TestSilo.StartAsync(redis.Connection, TestData.Id("b"), serviceId: service,
            configure: o => o.SessionCheckpointInterval = TimeSpan.FromMilliseconds(200));
        foreach (var c in customers)
        {
            var p = await b.Grains.GetGrain<ICustomerSessionGrain>(c).GetProfile();
            Assert.Equal(Rounds, p.EventsApplied);
            Assert.Equal([product], p.RecentItems);
        }

        using var mux = await ConnectionMultiplexer.ConnectAsync(redis.Connection);
        var db = mux.GetDatabase();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        foreach (var c in customers)
        {
            while (await db.StreamLengthAsync($"engine-journal/{service}/{c}") > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"journal of {c} not trimmed after silo B's checkpoint");
                await Task.Delay(50);
            }
        }
        // Trimmed only after the checkpoint: a third silo reads the state from grain storage alone.
        await b.StopAsync();
        await using var c3 = await TestSilo.StartAsync(redis.Connection, TestData.Id("c"), serviceId: service);
        foreach (var c in customers)
            Assert.Equal(Rounds, (await c3.Grains.GetGrain<ICustomerSessionGrain>(c).GetProfile()).EventsApplied);
    }
}
