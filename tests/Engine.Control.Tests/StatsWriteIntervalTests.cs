using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>A stats shard writes its state at most once per <see cref="ControlOptions.StatsWriteInterval"/>: flushes in
/// between change the live counters at once and reach storage by the timer (own silo: it needs a counting store).</summary>
public sealed class StatsWriteIntervalTests : OwnSiloTests<StatsWriteIntervalTests.Configurator>
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    /// <summary>Margin for a timer firing a clock tick early when a wall-clock window decides what to assert.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Flushes_inside_the_interval_share_one_timed_write_that_holds_all_of_them()
    {
        var arm = new ArmKey("exp-" + Guid.NewGuid().ToString("N"), "treatment", "m1");
        var key = arm.ToGrainKey(0);
        var shard = Cluster.Client.GetGrain<IArmStatsGrain>(key);

        // The timer is armed by the first flush: started before it, this watch bounds the timer's age from above.
        var applying = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
            await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, $"rec-{i}")]);
        Assert.Equal(5, (await shard.GetCounters()).Exposures); // live state is current at once
        // On a loaded machine the five calls can outlast the interval, and then the timer rightly wrote between
        // them: "only the first flush wrote" is checked only when the calls fitted inside the interval.
        var count = RecordingGrainStorage.Count(key);
        var inside = applying.Elapsed < Interval - Slack; // read after the count: the count was taken inside too
        if (inside) Assert.Equal(1, count);               // only the first flush wrote

        var writes = await RecordingGrainStorage.WaitFor(key, w => w.Count > 0 && w[^1].Value == 5, TimeSpan.FromSeconds(30));
        Assert.Equal(1, writes[0].Value);      // the first flush wrote at once
        Assert.Equal(5, writes[^1].Value);     // and a timed write holds all five
        if (inside) Assert.Equal(2, writes.Count); // one timed write for the other four
        // Never two writes inside one interval; half an interval of margin because a write is recorded a little
        // after the grain took its time (a thread descheduled in between shortens the recorded gap).
        for (var i = 1; i < writes.Count; i++)
            Assert.True(writes[i].At - writes[i - 1].At >= Interval / 2,
                string.Join(", ", writes.Select(w => $"{w.At:HH:mm:ss.fff}={w.Value}")));
    }

    [Fact]
    public async Task Counters_changed_while_only_the_decision_log_waits_for_its_minutes_long_interval_are_written_by_the_counter_timer()
    {
        var arm = new ArmKey("exp-" + Guid.NewGuid().ToString("N"), "treatment", "m1");
        var key = arm.ToGrainKey(0);
        var shard = Cluster.Client.GetGrain<IArmStatsGrain>(key);
        await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, "rec-0")]); // writes counters (and log) at once
        await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, "rec-1")]); // both pending: a counter timer
        await RecordingGrainStorage.WaitFor(key, w => w.Count >= 2, TimeSpan.FromSeconds(30));
        // Now only the log is pending (DecisionLogWriteInterval: 5 min by default) and its timer is set minutes ahead.
        await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, "rec-2")]);
        var writes = await RecordingGrainStorage.WaitFor(key, w => w.Count >= 3, TimeSpan.FromSeconds(30)); // a ceiling, not a timing assert
        Assert.Equal([1L, 2L, 3L], writes.Select(w => w.Value));
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is ArmStatsState s ? s.Counters.Exposures : null));
            silo.Services.AddControlServices(o => o.StatsWriteInterval = Interval);
        }
    }
}
