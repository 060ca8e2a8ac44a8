using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Engine.Control.Tests.Redis;

/// <summary>The Redis event journal's group commit: concurrent appends share store writes (one script
/// call each), every entry still lands in its own customer's stream at the position its caller was
/// told, and an append larger than one write is split without reordering.</summary>
public class RedisJournalTests
{
    private static RedisEventJournal Journal(int writesInFlight, int maxEntriesPerWrite) =>
        new(ControlSiloBuilderExtensions.ParseRedis(RedisServer.Connection), TestData.Id("journal"),
            new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>(), writesInFlight, maxEntriesPerWrite);

    private static KeyValuePair<string, CustomerEvent[]> Entry(string customer, int events) =>
        KeyValuePair.Create(customer, Enumerable.Range(0, events).Select(_ => TestData.Event(customer, EventKind.SearchNoResults, null)).ToArray());

    [RequiresRedisFact]
    public async Task Concurrent_appends_share_writes_and_each_entry_is_read_back_at_the_position_its_caller_got()
    {
        await using var journal = Journal(writesInFlight: 1, maxEntriesPerWrite: 64);
        await journal.AppendAsync([Entry("warm", 1)]); // connected, so the appends below queue behind each other at once
        var writesBefore = journal.Writes;
        var customers = Enumerable.Range(0, 8).Select(i => $"c{i}").ToArray();
        // 20 sink calls, each with one entry for 5 of the 8 customers (one event per shopper, or two).
        var appends = Enumerable.Range(0, 20)
            .Select(a => Enumerable.Range(0, 5).Select(k => Entry(customers[(a + k) % customers.Length], 1 + (a + k) % 2)).ToArray())
            .ToArray();
        var tasks = appends.Select(batch => journal.AppendAsync(batch)).ToArray();
        var positions = await Task.WhenAll(tasks);

        var writes = journal.Writes - writesBefore;
        Assert.InRange(writes, 1, appends.Length - 1); // coalesced: fewer writes than calls
        Assert.Equal(appends.Length * 5 + 1, journal.EntriesWritten);

        var expected = new Dictionary<string, List<JournalEntry>>();
        for (var a = 0; a < appends.Length; a++)
        {
            Assert.Equal(appends[a].Length, positions[a].Length);
            for (var i = 0; i < appends[a].Length; i++)
                (expected.TryGetValue(appends[a][i].Key, out var list) ? list : expected[appends[a][i].Key] = []).Add(new JournalEntry(positions[a][i], appends[a][i].Value));
        }
        foreach (var (customer, entries) in expected)
        {
            var read = await journal.ReadAsync(customer, JournalPosition.Start, 1000);
            // Stream order is the order of the positions handed out.
            Assert.Equal(entries.OrderBy(e => e.Position).Select(e => e.Position), read.Select(e => e.Position));
            foreach (var entry in read)
                Assert.Equal(entries.Single(e => e.Position == entry.Position).Events.Select(e => e.EventId), entry.Events.Select(e => e.EventId));
        }
    }

    [RequiresRedisFact]
    public async Task An_append_larger_than_one_write_is_split_and_keeps_its_order()
    {
        await using var journal = Journal(writesInFlight: 2, maxEntriesPerWrite: 64);
        var batch = Enumerable.Range(0, 150).Select(i => Entry("one", 1)).ToArray(); // 150 entries of one customer
        var positions = await journal.AppendAsync(batch);
        Assert.Equal(3, journal.Writes);
        Assert.Equal(150, positions.Length);
        Assert.Equal(positions.Order(), positions); // increasing: the parts went out in order
        var read = await journal.ReadAsync("one", JournalPosition.Start, 1000);
        Assert.Equal(batch.Select(e => e.Value[0].EventId), read.Select(e => e.Events[0].EventId));
        Assert.Equal(positions, read.Select(e => e.Position));
    }
}
