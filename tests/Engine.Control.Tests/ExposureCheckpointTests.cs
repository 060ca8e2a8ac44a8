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
public sealed class ExposureCheckpointTests : IAsyncLifetime
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
    public async Task Batches_of_exposures_are_written_by_one_timed_checkpoint_and_a_direct_exposure_writes_at_once()
    {
        var customer = "c-" + Guid.NewGuid().ToString("N");
        var arm = ArmKey.Unassigned("m1");
        var aggregator = _cluster.Client.GetGrain<IExposureAggregatorGrain>(0);
        for (var i = 0; i < 5; i++)
            Assert.Equal(1, await aggregator.Record([new Exposure($"r{i}", customer, arm, "{}", [], DateTimeOffset.UtcNow)]));
        Assert.Equal(0, RecordingGrainStorage.Count(customer)); // applied in memory only

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (RecordingGrainStorage.Count(customer) < 1 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(1, RecordingGrainStorage.Count(customer));           // one checkpoint for the five batches
        Assert.Equal(5, RecordingGrainStorage.Last(customer));    // holding all of them
        await Task.Delay(1500);
        Assert.Equal(1, RecordingGrainStorage.Count(customer));           // nothing new: no further write

        // The single-exposure call keeps its contract: durable before it returns.
        await _cluster.Client.GetGrain<ICustomerSessionGrain>(customer).RecordExposure(new Exposure("r5", customer, arm, "{}", [], DateTimeOffset.UtcNow));
        Assert.Equal((2, 6L), (RecordingGrainStorage.Count(customer), RecordingGrainStorage.Last(customer)));
    }

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new RecordingGrainStorage(state => state is SessionState s ? s.Exposures.Count : null));
            silo.Services.AddControlServices(o => o.ExposureCheckpointInterval = TimeSpan.FromMilliseconds(500));
        }
    }
}
