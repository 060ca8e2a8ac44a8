using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>Base of the test classes that need a silo of their own (a counting store, short timers): one in-process
/// silo configured by <typeparamref name="TConfigurator"/>, started before the class's tests and stopped after them.
/// Grain tests that can share a silo use <see cref="ClusterFixture"/> instead (a silo takes 2–3.5 s to start).</summary>
public abstract class OwnSiloTests<TConfigurator> : IAsyncLifetime where TConfigurator : ISiloConfigurator, new()
{
    protected TestCluster Cluster { get; private set; } = null!;

    /// <summary>The silo's services (its event sink, journal and applier live there).</summary>
    protected IServiceProvider Silo => ((InProcessSiloHandle)Cluster.Primary!).SiloHost.Services;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}
