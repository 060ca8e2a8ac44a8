using Engine.Control.Sessions;

namespace Engine.Control.Tests.Redis;

/// <summary>Redis goes away under a silo: writes fail loudly (never acknowledged), and once it is
/// back the retries land and nothing acknowledged is missing.</summary>
[Collection(SiloCollection.Name)]
public class RedisOutageTests
{
    [RequiresRedisBinaryFact]
    public async Task Events_are_not_acknowledged_while_redis_is_down_and_retries_succeed_after()
    {
        using var redis = new PrivateRedis();
        redis.Start();
        var cluster = TestData.Id("outage");
        var customer = TestData.Id("c");
        var first = TestData.Event(customer, EventKind.SearchNoResults, null);
        var second = TestData.Event(customer, EventKind.SearchWithResults, null);
        await using (var silo = await TestSilo.StartAsync(redis.Connection, cluster))
        {
            Assert.Equal(EventOutcome.Accepted, await silo.Events.RecordAsync(first));
            redis.Kill();
            // The journal write fails: a clear error naming the store, and no acknowledgement.
            var failure = await Assert.ThrowsAsync<EventJournalUnavailableException>(() => silo.Events.RecordAsync(second).AsTask());
            Assert.Contains("NOT acknowledged", failure.Message);
            Assert.Contains($"Redis 127.0.0.1:{redis.Port}", failure.Message);
            redis.Start(); // same append-only file: the first event's write is still there
            await RedisClusterTests.SendUntilAcknowledged(silo.Events, second);
            Assert.Equal(2, (await silo.Grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile()).EventsApplied);
        }
        await using (var silo = await TestSilo.StartAsync(redis.Connection, cluster))
            Assert.Equal(2, (await silo.Grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile()).EventsApplied);
    }
}
