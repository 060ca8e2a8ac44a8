using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>Exposures logged through <see cref="ICustomerSessionGrain.RecordExposures"/> cost the session no state write
/// of their own: they are written once by the session's timed checkpoint (<see cref="ControlOptions.ExposureCheckpointInterval"/>),
/// however many batches arrived (own silo: it needs a counting store).</summary>
public sealed class ExposureCheckpointTests : OwnSiloTests<ExposureCheckpointTests.Configurator>
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>Margin for a timer firing a clock tick early when a wall-clock window decides what to assert.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Batches_of_exposures_are_written_by_one_timed_checkpoint_and_a_direct_exposure_writes_at_once()
    {
        var customer = "c-" + Guid.NewGuid().ToString("N");
        var arm = ArmKey.Unassigned("m1");
        var aggregator = Cluster.Client.GetGrain<IExposureAggregatorGrain>(0);
        // The checkpoint timer is armed by the first batch: started before it, this watch bounds the timer's age.
        var recording = System.Diagnostics.Stopwatch.StartNew();
        var started = DateTime.UtcNow;
        for (var i = 0; i < 5; i++)
            Assert.Equal(1, await aggregator.Record([new Exposure($"r{i}", customer, arm, "{}", [], DateTimeOffset.UtcNow)]));
        // On a loaded machine the five calls can outlast the interval, and then the checkpoint rightly wrote between
        // them: the exact counts are checked only when the calls fitted inside the interval.
        var count = RecordingGrainStorage.Count(customer);
        var inside = recording.Elapsed < Interval / 2 - Slack; // read after the count: the count was taken inside too
        if (inside) Assert.Equal(0, count);                // applied in memory only

        var writes = await RecordingGrainStorage.WaitFor(customer, w => w.Count > 0 && w[^1].Value == 5, TimeSpan.FromSeconds(30));
        Assert.Equal(5, RecordingGrainStorage.Last(customer)); // a checkpoint holds all of them
        // By the timer, not by a call: its delay is drawn in [Interval/2, Interval].
        Assert.True(writes[0].At >= started + Interval / 2 - Slack, $"first write {writes[0].At:HH:mm:ss.fff}, first batch {started:HH:mm:ss.fff}");
        if (inside) Assert.Single(writes);                 // one checkpoint for the five batches
        await Task.Delay(Interval * 1.5);
        Assert.Equal(writes.Count, RecordingGrainStorage.Count(customer)); // nothing new: no further write

        // The single-exposure call keeps its contract: durable before it returns.
        await Cluster.Client.GetGrain<ICustomerSessionGrain>(customer).RecordExposure(new Exposure("r5", customer, arm, "{}", [], DateTimeOffset.UtcNow));
        Assert.Equal((writes.Count + 1, 6L), (RecordingGrainStorage.Count(customer), RecordingGrainStorage.Last(customer)));
    }

    /// <summary>Sessions that got their first lists together write their checkpoints apart (each arming draws its delay
    /// in [Interval/2, Interval]): one fixed delay had 10k sessions write in the same few seconds every interval.</summary>
    [Fact]
    public async Task Sessions_exposed_together_write_their_checkpoints_spread_over_half_an_interval()
    {
        var arm = ArmKey.Unassigned("m1");
        string[] customers = [.. Enumerable.Range(0, 20).Select(_ => "c-" + Guid.NewGuid().ToString("N"))];
        var started = DateTime.UtcNow;
        Assert.Equal(customers.Length, await Cluster.Client.GetGrain<IExposureAggregatorGrain>(0)
            .Record([.. customers.Select((c, i) => new Exposure($"s{i}", c, arm, "{}", [], DateTimeOffset.UtcNow))]));

        var firsts = new List<DateTime>();
        foreach (var c in customers) firsts.Add((await RecordingGrainStorage.WaitFor(c, w => w.Count > 0, TimeSpan.FromSeconds(30)))[0].At);
        Assert.All(firsts, at => Assert.True(at >= started + Interval / 2 - Slack, $"write {at:HH:mm:ss.fff}, batch {started:HH:mm:ss.fff}"));
        // 20 draws over half a second: all within a fifth of the interval has a chance of ~1e-6 (a fixed delay: always).
        var spread = firsts.Max() - firsts.Min();
        Assert.True(spread > Interval / 5, $"first writes within {spread.TotalMilliseconds:0} ms of each other");
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is SessionState s ? s.HeldExposures?.Count ?? 0 : null));
            silo.Services.AddControlServices(o => o.ExposureCheckpointInterval = Interval);
        }
    }
}
