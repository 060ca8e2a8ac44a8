using System.Collections.Concurrent;
using Engine.Control.Catalog;
using Engine.Control.Sessions;

namespace Engine.Control.Tests.Redis;

/// <summary>Several silos on a real Redis: clustering and grain storage through the official providers.</summary>
[Collection(SiloCollection.Name)]
public class RedisClusterTests
{
    private const int Customers = 24;
    private const int Rounds = 16;

    [RequiresRedisFact]
    public async Task Three_silos_lose_no_acknowledged_event_when_one_stops_and_state_returns_after_a_full_restart()
    {
        var cluster = TestData.Id("cluster");
        var silos = new List<TestSilo> { await TestSilo.StartAsync(RedisServer.Connection, cluster) };
        silos.AddRange(await Task.WhenAll(TestSilo.StartAsync(RedisServer.Connection, cluster), TestSilo.StartAsync(RedisServer.Connection, cluster)));
        try
        {
            var product = TestData.Id("p");
            await silos[0].Grains.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Boot", [1, 0, 0]));
            var customers = Enumerable.Range(0, Customers).Select(i => $"{cluster}-c{i}").ToArray();
            var acked = new ConcurrentDictionary<string, ConcurrentBag<Guid>>();

            // Traffic enters through silo 0 (as `engine serve` would); silo 2 stops in the middle.
            var sink = silos[0].Events;
            var stopped = Task.CompletedTask;
            for (var round = 0; round < Rounds; round++)
            {
                if (round == Rounds / 2) stopped = silos[2].StopAsync(); // not awaited here: traffic goes on while it stops
                await Task.WhenAll(customers.Select(async c =>
                {
                    var e = TestData.Event(c, round % 2 == 0 ? EventKind.View : EventKind.SearchWithResults, round % 2 == 0 ? product : null);
                    await SendUntilAcknowledged(sink, e);
                    acked.GetOrAdd(c, _ => []).Add(e.EventId);
                }));
            }
            // Once it has stopped, every session answers from the two silos left (calls made while it was still
            // stopping can be rejected by it: the event sends above retry, as a client would).
            await stopped;
            foreach (var c in customers)
                Assert.Equal(acked[c].Count, (await silos[1].Grains.GetGrain<ICustomerSessionGrain>(c).GetProfile()).EventsApplied);

            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
            silos.Clear();
            silos.Add(await TestSilo.StartAsync(RedisServer.Connection, cluster));
            silos.AddRange(await Task.WhenAll(TestSilo.StartAsync(RedisServer.Connection, cluster), TestSilo.StartAsync(RedisServer.Connection, cluster)));
            foreach (var c in customers)
            {
                var session = silos[2].Grains.GetGrain<ICustomerSessionGrain>(c);
                var profile = await session.GetProfile();
                Assert.Equal(Rounds, profile.EventsApplied);
                Assert.Equal([product], profile.RecentItems);
                // The idempotency window came back too: a late retry is still a duplicate.
                Assert.Equal(EventOutcome.Duplicate, await session.Record(TestData.Event(c, EventKind.View, product) with { EventId = acked[c].First() }));
            }
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    /// <summary>A client's retry loop: an event counts only once a call returns; failures (a silo
    /// going away mid-call) are retried with the same event id, which makes the retry idempotent.</summary>
    internal static async Task SendUntilAcknowledged(IEventSink sink, CustomerEvent e)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var outcome = await sink.RecordAsync(e);
                Assert.True(outcome is EventOutcome.Accepted or EventOutcome.Duplicate, $"event {e.EventId}: {outcome}");
                return;
            }
            catch (Exception) when (attempt < 30)
            {
                await Task.Delay(200);
            }
        }
    }
}
