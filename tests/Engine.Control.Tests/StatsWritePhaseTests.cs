using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>The shards of one arm, flushed together, do not keep writing their decision logs together: shard s of n
/// writes s/n of <see cref="ControlOptions.StatsWriteInterval"/> earlier (own silo: it needs a recording store).</summary>
public sealed class StatsWritePhaseTests : OwnSiloTests<StatsWritePhaseTests.Configurator>
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private const int Shards = 4;

    /// <summary>Margin for comparing the times the grain took with the times the store recorded a little later (a
    /// thread descheduled in between on a loaded machine) and for a timer firing a clock tick early.</summary>
    private static readonly TimeSpan Slack = Interval / 8;

    [Fact]
    public async Task Shards_flushed_together_write_their_timed_writes_at_different_times()
    {
        var arm = new ArmKey("exp-" + Guid.NewGuid().ToString("N"), "treatment", "m1");
        var keys = Enumerable.Range(0, Shards).Select(arm.ToGrainKey).ToArray();
        Task Flush(string round) => Task.WhenAll(keys.Select(k => Cluster.Client.GetGrain<IArmStatsGrain>(k)
            .Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, $"rec-{round}-{k}")])));
        await Flush("a"); // every shard writes at once
        await Flush("b"); // every shard's write is timed
        var flushed = DateTime.UtcNow;

        var writes = new IReadOnlyList<(DateTime At, long Value)>[Shards];
        for (var s = 0; s < Shards; s++)
            writes[s] = await RecordingGrainStorage.WaitFor(keys[s], w => w.Count >= 2, Interval * 15);
        Assert.All(writes, w => Assert.Equal(2, w.Count));
        var first = writes.Select(w => w[0].At).ToArray();
        var second = writes.Select(w => w[1].At).ToArray();
        var times = string.Join(", ", second.Select(t => t.ToString("HH:mm:ss.fff")));
        // Shard s may write again s/n of an interval early: 2 s, 1.5 s, 1 s, 0.5 s after its first write.
        for (var s = 0; s < Shards; s++)
            Assert.True(second[s] - first[s] >= Interval * (1 - (double)s / Shards) - Slack, $"shard {s}: {first[s]:HH:mm:ss.fff} then {second[s]:HH:mm:ss.fff}");
        // Spread out, shard 3 first, when the second flush reached every shard before the earliest of those times
        // (timers may fire late, not together). Later than that, on a loaded machine, the shards whose time had come
        // rightly wrote at once, together.
        if (flushed < first.Min() + Interval / Shards - Slack)
        {
            Assert.True(second.Max() - second.Min() >= Interval / 4, times);
            Assert.True(second[3] < second[0], times);
        }
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is ArmStatsState ? 0 : null));
            silo.Services.AddControlServices(o => { o.StatsWriteInterval = Interval; o.StatsShards = Shards; });
        }
    }
}
