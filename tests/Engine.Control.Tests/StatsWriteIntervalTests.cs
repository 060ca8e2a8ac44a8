using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>A stats shard writes its state at most once per <see cref="ControlOptions.StatsWriteInterval"/>: flushes in
/// between change the live counters at once and reach storage by the timer (own silo: it needs a counting store).</summary>
public sealed class StatsWriteIntervalTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<Configurator>();
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Flushes_inside_the_interval_share_one_timed_write_that_holds_all_of_them()
    {
        var arm = new ArmKey("exp-" + Guid.NewGuid().ToString("N"), "treatment", "m1");
        var key = arm.ToGrainKey(0);
        var shard = _cluster.Client.GetGrain<IArmStatsGrain>(key);

        for (var i = 0; i < 5; i++)
            await shard.Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, $"rec-{i}")]);

        Assert.Equal(5, (await shard.GetCounters()).Exposures); // live state is current at once
        Assert.Equal(1, RecordingGrainStorage.Count(key));            // only the first flush wrote

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (RecordingGrainStorage.Count(key) < 2 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(2, RecordingGrainStorage.Count(key));            // one timed write for the other four
        Assert.Equal(5, RecordingGrainStorage.Last(key));     // and it holds all five
    }

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is ArmStatsState s ? s.Counters.Exposures : null));
            silo.Services.AddControlServices(o => o.StatsWriteInterval = TimeSpan.FromSeconds(1));
        }
    }
}
