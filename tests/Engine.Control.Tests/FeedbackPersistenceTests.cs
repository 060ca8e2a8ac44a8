using System.Collections.Concurrent;
using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>What the feedback path persists: a stats shard keeps its counters and its decision log in two states written
/// on two cadences (<see cref="ControlOptions.StatsWriteInterval"/>, <see cref="ControlOptions.DecisionLogWriteInterval"/>);
/// a shard that deactivates writes both and its next activation exports the same decisions; a shard stored in the earlier
/// layout (the log inside the counters' state) moves its log over; a session stored with the earlier list of exposures
/// still rewards their arms and is written in the compact form. Own silo: a store that serializes what it keeps (a real
/// round trip) and counts writes per state.</summary>
public sealed class FeedbackPersistenceTests : OwnSiloTests<FeedbackPersistenceTests.Configurator>
{
    private static ArmKey NewArm() => ArmKey.Unassigned("m-" + Guid.NewGuid().ToString("N"));

    private static FeedbackSignal Exposure(ArmKey arm, int i) => new(arm, FeedbackKind.Exposure, $"rec-{i}",
        Actions: [new ExposedAction($"p{i}", 1f), new ExposedAction("p-common", 1f)], Timestamp: DateTimeOffset.UnixEpoch.AddMinutes(i),
        ContextUtf8: System.Text.Encoding.UTF8.GetBytes($"{{\"i\":{i},\"s\":\"é€\"}}"));

    /// <summary>A decision as comparable text (actions are a list: records compare it by reference).</summary>
    private static string Text(LoggedDecision d) =>
        $"{d.RecommendationId}|{d.Arm}|{d.Context}|{d.ServedAt:O}|{d.Shadow}|{d.UpdatedAt:O}|{string.Join(";", d.Actions)}";

    [Fact]
    public async Task Counters_are_written_every_flush_the_log_once_per_its_interval_and_both_at_deactivation_then_read_back_equal()
    {
        var arm = NewArm();
        var key = arm.ToGrainKey(0);
        var shard = Cluster.Client.GetGrain<IArmStatsGrain>(key);
        for (var i = 0; i < 5; i++) await shard.Apply([Exposure(arm, i)]);
        await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Click, "rec-3", "p-common"), new FeedbackSignal(arm, FeedbackKind.Purchase, "rec-3", "p-common")]);

        // StatsWriteInterval zero: every flush writes the counters; the log only on the first (its interval is an hour).
        Assert.Equal(6, SerializingGrainStorage.Writes("armstats", key));
        Assert.Equal(1, SerializingGrainStorage.Writes("armlog", key));
        var before = (await shard.ExportDecisions(100)).Select(Text).ToArray();
        Assert.Equal(5, before.Length);
        var counters = await shard.GetCounters();

        await Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (SerializingGrainStorage.Writes("armlog", key) < 2 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(2, SerializingGrainStorage.Writes("armlog", key)); // the deactivation wrote the log
        Assert.Equal(6, SerializingGrainStorage.Writes("armstats", key)); // counters were clean: not written again

        // A new activation reads both back: the same decisions, rewards included, and the same counters.
        Assert.Equal(before, (await shard.ExportDecisions(100)).Select(Text));
        Assert.Equal(counters, await shard.GetCounters());
        Assert.Contains("Clicks = 1, Carts = 0, Purchases = 1", before[3]);
    }

    [Fact]
    public async Task A_shard_stored_in_the_earlier_layout_moves_its_log_into_its_own_state_and_exports_it_unchanged()
    {
        var arm = NewArm();
        var key = arm.ToGrainKey(1);
        var old = new DecisionLog(2000);
        for (var i = 0; i < 3; i++)
            old.Add(new LoggedDecision($"rec-{i}", arm, $"{{\"i\":{i}}}", DateTimeOffset.UnixEpoch.AddMinutes(i), false,
                [new LoggedAction($"p{i}", 1, 1f, i, 0, 0, 0, 0.1 * i)], i == 0 ? null : DateTimeOffset.UnixEpoch.AddHours(1)));
        var expected = old.Latest(10).Select(Text).ToArray();
        SerializingGrainStorage.Put(Silo.GetRequiredService<Serializer>(), "armstats", key, new ArmStatsState { Counters = new ArmCounters(0, 3, 3, 0, 0, 0, 0.3, 0.05), DecisionLog = old });

        var shard = Cluster.Client.GetGrain<IArmStatsGrain>(key);
        Assert.Equal(expected, (await shard.ExportDecisions(10)).Select(Text));
        Assert.Equal(3, (await shard.GetCounters()).Exposures);
        // Moved: the log in its own state, the counters' state without it.
        Assert.Equal(expected, SerializingGrainStorage.Get<ArmLogState>(Silo.GetRequiredService<Serializer>(), "armlog", key)!.Log!.Latest(10).Select(Text));
        var counters = SerializingGrainStorage.Get<ArmStatsState>(Silo.GetRequiredService<Serializer>(), "armstats", key)!;
        Assert.Null(counters.DecisionLog);
        Assert.Equal(3, counters.Counters.Exposures);
    }

    [Fact]
    public async Task A_session_stored_with_the_earlier_list_of_exposures_still_rewards_their_arms_and_is_written_compact()
    {
        var serializer = Silo.GetRequiredService<Serializer>();
        var (arm, shadowArm) = (NewArm(), NewArm());
        var customer = TestData.Id("c");
        var product = TestData.Id("p");
        await Cluster.Client.GetGrain<Engine.Control.Catalog.IProductGrain>(product).Upsert(TestData.Product("Bag", [1, 0]));
        var at = DateTimeOffset.UnixEpoch.AddDays(1);
        SerializingGrainStorage.Put(serializer, "session", customer, new SessionState
        {
            Exposures = [new Exposure("r1", customer, arm, "", [], at), new Exposure("r1~shadow", customer, shadowArm, "", [], at, Shadow: true)],
        });

        var session = Cluster.Client.GetGrain<ICustomerSessionGrain>(customer);
        Assert.All(await session.RecordBatch([
            TestData.Event(customer, EventKind.Click, product, rec: "r1"),
            TestData.Event(customer, EventKind.Click, product, rec: "r1~shadow"), // a shadow list is never rewarded
        ]), o => Assert.Equal(EventOutcome.Accepted, o));

        async Task<long> Clicks(ArmKey a)
        {
            long sum = 0;
            for (var s = 0; s < 4; s++) sum += (await Cluster.Client.GetGrain<IArmStatsGrain>(a.ToGrainKey(s)).GetCounters()).Clicks;
            return sum;
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (await Clicks(arm) == 0 && DateTime.UtcNow < deadline)
        {
            await Cluster.Client.GetGrain<IFeedbackAggregatorGrain>(0).Flush();
            await Task.Delay(50);
        }
        Assert.Equal((1L, 0L), (await Clicks(arm), await Clicks(shadowArm)));

        var written = SerializingGrainStorage.Get<SessionState>(serializer, "session", customer)!; // the event's own write
        Assert.Empty(written.Exposures);
        Assert.Equal(new (string, ArmKey, DateTimeOffset, bool)[] { ("r1", arm, at, false), ("r1~shadow", shadowArm, at, true) },
            written.HeldExposures!.ToList());
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (sp, _) => new SerializingGrainStorage(sp.GetRequiredService<Serializer>()));
            silo.Services.AddControlServices(o => { o.StatsWriteInterval = TimeSpan.Zero; o.DecisionLogWriteInterval = TimeSpan.FromHours(1); });
        }
    }

    /// <summary>Keeps each state as the bytes Orleans' serializer wrote (process-wide, by state name and grain key) and
    /// counts the writes.</summary>
    private sealed class SerializingGrainStorage(Serializer serializer) : IGrainStorage
    {
        private static readonly ConcurrentDictionary<(string, string), byte[]> Stored = new();
        private static readonly ConcurrentDictionary<(string, string), int> Counts = new();

        public static int Writes(string state, string key) => Counts.GetValueOrDefault((state, key));

        public static void Put<T>(Serializer serializer, string state, string key, T value) => Stored[(state, key)] = serializer.SerializeToArray(value);

        public static T? Get<T>(Serializer serializer, string state, string key) =>
            Stored.TryGetValue((state, key), out var bytes) ? serializer.Deserialize<T>(bytes) : default;

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (Stored.TryGetValue((stateName, grainId.Key.ToString()!), out var bytes))
            {
                grainState.State = serializer.Deserialize<T>(bytes);
                grainState.ETag = "1";
                grainState.RecordExists = true;
            }
            return Task.CompletedTask;
        }

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            var key = (stateName, grainId.Key.ToString()!);
            Stored[key] = serializer.SerializeToArray(grainState.State);
            Counts.AddOrUpdate(key, 1, (_, n) => n + 1);
            grainState.ETag = Guid.NewGuid().ToString("N");
            grainState.RecordExists = true;
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
    }
}
