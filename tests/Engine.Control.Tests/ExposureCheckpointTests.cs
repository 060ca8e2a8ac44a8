using System.Collections.Concurrent;
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
        Assert.Equal(0, CountingStorage.Writes(customer)); // applied in memory only

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (CountingStorage.Writes(customer) < 1 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(1, CountingStorage.Writes(customer));           // one checkpoint for the five batches
        Assert.Equal(5, CountingStorage.LastExposures(customer));    // holding all of them
        await Task.Delay(1500);
        Assert.Equal(1, CountingStorage.Writes(customer));           // nothing new: no further write

        // The single-exposure call keeps its contract: durable before it returns.
        await _cluster.Client.GetGrain<ICustomerSessionGrain>(customer).RecordExposure(new Exposure("r5", customer, arm, "{}", [], DateTimeOffset.UtcNow));
        Assert.Equal((2, 6), (CountingStorage.Writes(customer), CountingStorage.LastExposures(customer)));
    }

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(ControlStorage.Name, (_, _) => new CountingStorage());
            silo.Services.AddControlServices(o => o.ExposureCheckpointInterval = TimeSpan.FromMilliseconds(500));
        }
    }

    /// <summary>Keeps nothing; counts the sessions' writes per customer and the exposures each write held.</summary>
    private sealed class CountingStorage : IGrainStorage
    {
        private static readonly ConcurrentDictionary<string, (int Writes, int Exposures)> Seen = new();

        public static int Writes(string customer) => Seen.TryGetValue(customer, out var s) ? s.Writes : 0;
        public static int LastExposures(string customer) => Seen.TryGetValue(customer, out var s) ? s.Exposures : -1;

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (grainState.State is SessionState s)
                Seen.AddOrUpdate(grainId.Key.ToString()!, (1, s.Exposures.Count), (_, old) => (old.Writes + 1, s.Exposures.Count));
            grainState.ETag = Guid.NewGuid().ToString("N");
            grainState.RecordExists = true;
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
    }
}
