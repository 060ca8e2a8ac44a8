using System.Net;
using System.Net.Sockets;
using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Engine.Benchmarks.Control;

/// <summary>The control-plane benchmarks' silo: one in-process silo as `engine serve` hosts it (in-memory
/// storage, free ports), with <c>p0 … p{products-1}</c> upserted with seeded random 384-dim embeddings so
/// view events find their product. With a Redis connection string, Redis clustering, grain storage and
/// event journal under a fresh service id (so no state of an earlier run is read).</summary>
internal static class BenchSilo
{
    /// <summary>Starts the silo and upserts the products; the caller stops and disposes the host.</summary>
    public static IHost Start(int products, int dimensions = 384, string? redis = null, Action<Engine.Control.ControlOptions>? configure = null)
    {
        var service = redis is null ? "engine" : $"bench-{Guid.NewGuid():N}";
        var builder = Host.CreateApplicationBuilder();
        // ENGINE_BENCH_LOG=1 keeps the host's console log at Warning and above (a failing checkpoint says so there).
        if (Environment.GetEnvironmentVariable("ENGINE_BENCH_LOG") is null) builder.Logging.ClearProviders();
        else builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo => silo.UseEngineControl(new ControlHostingOptions
        {
            SiloPort = FreePort(), GatewayPort = FreePort(), Redis = redis, ClusterId = service, ServiceId = service,
        }, configure));
        var host = builder.Build();
        host.StartAsync().GetAwaiter().GetResult();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var rng = new Random(1);
        Task.WhenAll(Enumerable.Range(0, products).Select(p => grains.GetGrain<IProductGrain>($"p{p}").Upsert(
            new ProductUpdate($"Product {p}", "bench", new Dictionary<string, string>(), 10m, 5, 0f,
                Enumerable.Range(0, dimensions).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray())))).GetAwaiter().GetResult();
        return host;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
