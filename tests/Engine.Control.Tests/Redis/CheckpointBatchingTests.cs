using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using StackExchange.Redis;

namespace Engine.Control.Tests.Redis;

/// <summary>The sessions' checkpoint commands on the Redis journal, coalesced across sessions
/// (<see cref="ControlOptions.SessionCheckpointBatching"/>): concurrent trims and range counts of many sessions share
/// script calls and each session still gets exactly its own answer; a failed call loses nothing and a retry trims;
/// a silo whose sessions checkpointed that way comes back after a restart holding exactly the acknowledged events.</summary>
[Collection(SiloCollection.Name)]
public class CheckpointBatchingTests
{
    private static RedisEventJournal Journal(string connection, int writesInFlight = 1) =>
        new(ControlSiloBuilderExtensions.ParseRedis(connection), TestData.Id("ckpt"),
            new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>(), writesInFlight, maxEntriesPerWrite: 64);

    private static KeyValuePair<string, CustomerEvent[]> Entry(string customer) =>
        KeyValuePair.Create(customer, new[] { TestData.Event(customer, EventKind.SearchNoResults, null) });

    /// <summary>Three entries for each of <paramref name="customers"/> (three sink calls of one event per shopper).</summary>
    private static async Task<JournalPosition[][]> ThreeEntriesEach(RedisEventJournal journal, string[] customers)
    {
        var calls = new JournalPosition[3][];
        for (var round = 0; round < 3; round++) calls[round] = await journal.AppendAsync(customers.Select(Entry).ToArray());
        return customers.Select((_, i) => calls.Select(c => c[i]).ToArray()).ToArray(); // [customer][round]
    }

    [RequiresRedisFact]
    public async Task Concurrent_trims_of_many_sessions_share_script_calls_and_each_stream_keeps_what_is_after_its_own_position()
    {
        await using var journal = Journal(RedisServer.Connection);
        var customers = Enumerable.Range(0, 50).Select(i => $"c{i}").ToArray();
        var positions = await ThreeEntriesEach(journal, customers);

        // Each session trims through its own second entry, all at once (as checkpoints finishing together).
        await Task.WhenAll(customers.Select((c, i) => journal.TrimAsync(c, positions[i][1])));
        var (calls, trims) = journal.TrimBatches;
        Assert.Equal(customers.Length, trims);
        Assert.InRange(calls, 1, customers.Length / 2); // coalesced: one call in flight, the rest queue and share
        for (var i = 0; i < customers.Length; i++)
            Assert.Equal([positions[i][2]], (await journal.ReadAsync(customers[i], JournalPosition.Start, 10)).Select(e => e.Position));
    }

    [RequiresRedisFact]
    public async Task Batched_range_counts_answer_each_session_its_own_span()
    {
        await using var journal = Journal(RedisServer.Connection);
        var customers = Enumerable.Range(0, 40).Select(i => $"c{i}").ToArray();
        var positions = await ThreeEntriesEach(journal, customers);

        // Customer i asks about a range that depends on i: (start, first], (first, third], (third, third].
        var spans = await Task.WhenAll(customers.Select((c, i) => (i % 3) switch
        {
            0 => journal.CountAsync(c, JournalPosition.Start, positions[i][0], 3),
            1 => journal.CountAsync(c, positions[i][0], positions[i][2], 3),
            _ => journal.CountAsync(c, positions[i][2], positions[i][2], 3),
        }));
        for (var i = 0; i < customers.Length; i++)
            Assert.Equal((i % 3) switch { 0 => new JournalSpan(1, true), 1 => new JournalSpan(2, false), _ => new JournalSpan(0, false) }, spans[i]);
        var (calls, counts) = journal.CountBatches;
        Assert.Equal(customers.Length, counts);
        Assert.InRange(calls, 1, customers.Length / 2);
        // The unbatched form answers the same.
        await using var single = new RedisEventJournal(ControlSiloBuilderExtensions.ParseRedis(RedisServer.Connection), "unused",
            new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>(), batchCheckpoints: false);
        Assert.Equal((0L, 0L), single.CountBatches);
    }

    [RequiresRedisBinaryFact]
    public async Task A_failed_batched_trim_fails_its_callers_keeps_every_entry_and_a_retry_trims()
    {
        using var redis = new PrivateRedis();
        redis.Start();
        await using var journal = Journal(redis.Connection);
        var customers = Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray();
        var positions = await ThreeEntriesEach(journal, customers);

        redis.Kill();
        var failed = await Task.WhenAll(customers.Select(async (c, i) =>
        {
            try { await journal.TrimAsync(c, positions[i][1]); return false; }
            catch (Exception) { return true; }
        }));
        Assert.All(failed, Assert.True); // no caller is told its trim happened

        redis.Start(); // same append-only file
        for (var i = 0; i < customers.Length; i++)
            Assert.Equal(positions[i], (await ReadWhenBack(journal, customers[i])).Select(e => e.Position)); // nothing dropped
        await Task.WhenAll(customers.Select((c, i) => journal.TrimAsync(c, positions[i][1])));
        for (var i = 0; i < customers.Length; i++)
            Assert.Equal([positions[i][2]], (await journal.ReadAsync(customers[i], JournalPosition.Start, 10)).Select(e => e.Position));
    }

    /// <summary>Reads a customer's whole journal, retrying while the connection comes back after a restart.</summary>
    private static async Task<IReadOnlyList<JournalEntry>> ReadWhenBack(RedisEventJournal journal, string customer)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try { return await journal.ReadAsync(customer, JournalPosition.Start, 10); }
            catch (Exception) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }
        }
    }

    [RequiresRedisBinaryFact]
    public async Task Sessions_checkpointing_through_batched_calls_hold_exactly_their_events_after_a_restart()
    {
        using var redis = new PrivateRedis(); // fsync on every write
        redis.Start();
        var service = TestData.Id("ckpt");
        var product = TestData.Id("p");
        var customers = Enumerable.Range(0, 100).Select(i => $"{service}-c{i}").ToArray();
        const int Rounds = 9;
        // Silo A keeps running (its sessions never deactivate, so what they did not checkpoint is only in the
        // journal, as after a SIGKILL); silo B is another cluster on the same service id, i.e. the same grain
        // state and journal, with its own activations (JournalReplayTests).
        await using var silo = await TestSilo.StartAsync(redis.Connection, TestData.Id("a"), serviceId: service,
            configure: o => { o.SessionCheckpointEntries = 4; o.SessionCheckpointInterval = TimeSpan.FromHours(1); });
        await silo.Grains.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Boot", [1, 0, 0]));
        var t = DateTimeOffset.UtcNow;
        for (var round = 0; round < Rounds; round++)
        {
            var batch = customers.Select(c => TestData.Event(c, EventKind.View, product, t.AddSeconds(round))).ToArray();
            Assert.All(await silo.Events.RecordBatchAsync(batch), o => Assert.Equal(EventOutcome.Accepted, o));
            await Task.Delay(100); // the applier hands each round over as its own entry
        }
        // Every session passed its length bound (2 to 4 entries) at least twice: wait until each has trimmed its
        // journal to at most its bound, through batched calls. (A session checkpoints once per applier call that takes
        // it past its bound; on a loaded machine the applier can hand two rounds over in one call, so only one trim per
        // session is certain: the count below asks for that, the coalescing for trims sharing calls.)
        var journal = (RedisEventJournal)silo.Host.Services.GetRequiredService<IEventJournal>();
        using var mux = await ConnectionMultiplexer.ConnectAsync(redis.Connection);
        var db = mux.GetDatabase();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var c in customers)
            while (await db.StreamLengthAsync($"engine-journal/{service}/{c}") > 4)
            {
                Assert.True(DateTime.UtcNow < deadline, $"journal of {c} not trimmed by its checkpoints");
                await Task.Delay(50);
            }
        var (calls, trims) = journal.TrimBatches;
        Assert.True(trims >= customers.Length, $"{trims} trims for {customers.Length} sessions");
        Assert.True(calls < trims / 4, $"{trims} trims in {calls} calls: not coalesced");

        // Each session in B is A's last checkpoint plus the journal after it, applied once.
        await using var next = await TestSilo.StartAsync(redis.Connection, TestData.Id("b"), serviceId: service);
        foreach (var c in customers)
            Assert.Equal(Rounds, (await next.Grains.GetGrain<ICustomerSessionGrain>(c).GetProfile()).EventsApplied);
    }
}
