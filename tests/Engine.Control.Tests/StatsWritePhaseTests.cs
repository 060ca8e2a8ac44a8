using Engine.Control.Feedback;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>The shards of one arm, flushed together, do not keep writing their decision logs together: shard s of n
/// writes s/n of <see cref="ControlOptions.StatsWriteInterval"/> earlier (own silo: it needs a recording store).</summary>
public sealed class StatsWritePhaseTests : IAsyncLifetime
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
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
    public async Task Shards_flushed_together_write_their_timed_writes_at_different_times()
    {
        var arm = new ArmKey("exp-" + Guid.NewGuid().ToString("N"), "treatment", "m1");
        var keys = Enumerable.Range(0, 4).Select(arm.ToGrainKey).ToArray();
        foreach (var round in new[] { "a", "b" }) // a: every shard writes at once; b: every shard's write is timed
            await Task.WhenAll(keys.Select(k => _cluster.Client.GetGrain<IArmStatsGrain>(k)
                .Apply([new FeedbackSignal(arm, FeedbackKind.Exposure, $"rec-{round}-{k}")])));

        var deadline = DateTime.UtcNow + Interval * 5;
        while (keys.Any(k => RecordingGrainStorage.Count(k) < 2) && DateTime.UtcNow < deadline) await Task.Delay(50);
        var second = keys.Select(k => RecordingGrainStorage.Writes(k).ElementAtOrDefault(1).At).ToArray();
        Assert.All(second, t => Assert.NotEqual(default, t));
        // Ideal: 2 s, 1.5 s, 1 s, 0.5 s after the first writes (shard 3 first); timers may fire late, not together.
        Assert.True(second.Max() - second.Min() >= Interval / 4, string.Join(", ", second.Select(t => t.ToString("HH:mm:ss.fff"))));
        Assert.True(second[3] < second[0]);
    }

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is ArmStatsState ? 0 : null));
            silo.Services.AddControlServices(o => { o.StatsWriteInterval = Interval; o.StatsShards = 4; });
        }
    }
}
