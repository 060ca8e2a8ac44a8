using System.Collections.Concurrent;
using Engine.Control.Catalog;
using Engine.Control.Content;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Engine.Control.Tests;

/// <summary>One in-process silo shared by every grain test class (a silo takes 2–3.5 s to start).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;
    public IClusterClient Client => Cluster.Client;

    /// <summary>The (only) silo's services: its event sink, journal and applier live there.</summary>
    public IServiceProvider SiloServices => ((InProcessSiloHandle)Cluster.Primary!).SiloHost.Services;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.AddMemoryGrainStorage(ControlStorage.Name);
            silo.Services.AddControlServices(o =>
            {
                o.FeedbackFlushInterval = TimeSpan.FromMilliseconds(100);
                o.SessionCheckpointInterval = TimeSpan.FromMilliseconds(300); // journal tests wait for a checkpoint
            });
            silo.Services.AddSingleton<IContentGenerator, ScriptedGenerator>();
            silo.Services.AddSingleton<ICatalogIndexSink, RecordingIndexSink>();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>Generator whose output the test picks through the template name; counts calls per product.</summary>
internal sealed class ScriptedGenerator : IContentGenerator
{
    public static readonly ConcurrentDictionary<string, int> Calls = new();

    public async Task<GeneratedCopy> GenerateAsync(ProductInfo product, string template, string modelVersion, GenerationParameters parameters, CancellationToken cancellationToken)
    {
        Calls.AddOrUpdate(product.ProductId, 1, (_, n) => n + 1);
        await Task.Delay(150, cancellationToken); // long enough for concurrent requests to pile up
        return template switch
        {
            "unsupported" => new GeneratedCopy($"{product.Title}: waterproof silk, now 50% off.", 0.95f),
            "unsure" => new GeneratedCopy($"{product.Title}.", 0.3f),
            // The seed picks the wording, so a regeneration with another seed reads differently.
            _ => new GeneratedCopy($"{(parameters.Seed % 2 == 0 ? "A" : "The")} {product.Title} in {product.Attributes.GetValueOrDefault("material", "")}.", 0.9f),
        };
    }
}

/// <summary>Records catalog changes seen by the "ranking index".</summary>
internal sealed class RecordingIndexSink : ICatalogIndexSink
{
    public static readonly ConcurrentQueue<(string Product, long Version)> Seen = new();

    public Task OnProductChangedAsync(string productId, long catalogVersion)
    {
        Seen.Enqueue((productId, catalogVersion));
        return Task.CompletedTask;
    }
}
