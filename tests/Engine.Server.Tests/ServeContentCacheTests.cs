using System.Net.Sockets;
using Engine.Cli.Commands;
using Engine.Cli.Hosting;
using Engine.Client;
using Engine.Control.Catalog;
using Engine.Control.Content;
using Engine.Control.Hosting;
using Engine.Core.Gguf;
using Engine.Cpu;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tokenization;
using Microsoft.Extensions.DependencyInjection;

namespace Engine.Server.Tests;

/// <summary>
/// `engine serve`'s Generate for product copy, in process: the server, a silo with the content cache grain, and a
/// real <see cref="GenerationScheduler"/> on a tiny synthetic model. Identical concurrent requests generate once
/// (counted as scheduler submissions) and get the same text; a later one is a cache hit; a catalog change generates anew.
/// </summary>
public sealed class ServeContentCacheTests : IAsyncLifetime
{
    private const string ModelVersion = "tiny-test";
    private readonly string _modelPath = Path.Combine(Path.GetTempPath(), $"engine-serve-copy-{Environment.ProcessId}-{Guid.NewGuid():N}.q8_0.gguf");
    private CpuBackend? _backend;
    private LlamaModel? _model;
    private GenerationScheduler? _scheduler;

    public Task InitializeAsync()
    {
        SyntheticModel.Write(_modelPath, SyntheticModelConfig.Tiny, seed: 3, type: GgmlType.Q8_0, threads: 1);
        _backend = new CpuBackend(threads: 1);
        _model = LlamaModel.Load(_modelPath, _backend);
        _scheduler = new GenerationScheduler(_model, GgufTokenizer.Create(_model.File.Metadata), new SchedulerOptions { MaxStreams = 4, ContextLength = 256 });
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _scheduler?.Dispose();
        _model?.Dispose();
        _backend?.Dispose();
        File.Delete(_modelPath);
        return Task.CompletedTask;
    }

    /// <summary>Holds each generation at a gate the test opens, and counts the calls (the silo's generator in this test).</summary>
    private sealed class GatedGenerator(IContentGenerator inner) : IContentGenerator
    {
        public readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Calls;

        public async Task<GeneratedCopy> GenerateAsync(ProductInfo product, string template, string modelVersion, GenerationParameters parameters, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            Entered.TrySetResult();
            await Gate.Task;
            return await inner.GenerateAsync(product, template, modelVersion, parameters, cancellationToken);
        }
    }

    private static int FreePort() => Engine.Tests.Shared.TestPorts.Free();

    private static ProductUpdate Shirt(decimal price) =>
        new("Cotton shirt", "shirts", new Dictionary<string, string> { ["material"] = "cotton", ["color"] = "blue" }, price, 5, 0f, null);

    private static GenerateRequest Copy(string product = "p1") =>
        new() { ProductId = product, Template = "description", Prompt = "unused for product copy", MaxTokens = 12 };

    [Fact]
    public async Task Concurrent_identical_product_copy_requests_generate_once_and_a_catalog_change_generates_again()
    {
        var scheduler = _scheduler!;
        var generator = new GatedGenerator(new SchedulerContentGenerator(scheduler));
        await using var host = await ServeHost.StartAsync(
            new ServerOptions { Port = 0 },
            context => new ServerHandlers { Generate = new SchedulerGenerateHandler(scheduler, ModelVersion, context.Grains), StatsSources = [context.ControlStats] },
            new ControlHostingOptions { SiloPort = FreePort(), GatewayPort = FreePort(), ClusterId = "copy-test", ServiceId = "copy-test" },
            logging: _ => { },
            services: s => s.AddSingleton<IContentGenerator>(generator));
        var product = await host.Grains.GetGrain<IProductGrain>("p1").Upsert(Shirt(20m));
        await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = host.EndPoint.Port });
        long submitted0 = scheduler.Submitted;

        // Two identical requests while the generation is held: the second must wait for the first's generation.
        var first = client.GenerateTextAsync(Copy());
        await generator.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var second = client.GenerateTextAsync(Copy());
        await Task.Delay(300);   // let the second request reach the cache grain while the generation is held
        Assert.False(first.IsCompleted || second.IsCompleted);
        generator.Gate.SetResult();
        GenerateDone a = await first, b = await second;

        Assert.Equal(1, generator.Calls);
        Assert.Equal(1, scheduler.Submitted - submitted0);
        Assert.NotEqual("", a.Text);
        Assert.Equal(a.Text, b.Text);
        Assert.False(a.Cached);
        Assert.Equal(1, a.Revision);
        Assert.Equal(1, b.Revision);
        // Attribution: the server's model version, and a seed derived from the key (the request left it 0).
        string key = new ContentKey("p1", "description", ModelVersion, product.Version).ToGrainKey();
        Assert.Equal(ModelVersion, a.ModelVersion);
        Assert.Equal(SchedulerGenerateHandler.SeedOf(key), a.Seed);
        var stored = await host.Grains.GetGrain<IContentCacheGrain>(key).Get();
        Assert.NotNull(stored);
        Assert.Equal(a.Text, stored.Text);
        Assert.Equal(ModelVersion, stored.Attribution.ModelVersion);
        Assert.Equal(a.Seed, stored.Attribution.Parameters.Seed);
        Assert.Equal(12, stored.Attribution.Parameters.MaxTokens);
        Assert.Equal((byte)stored.Status, a.ReviewStatus);
        Assert.Equal(stored.Issues.Select(i => $"{i.Kind}: {i.Term}"), a.ValidationIssues);

        // Later: a hit, streamed as the stored copy, nothing submitted.
        var pieces = new List<string>();
        await foreach (string piece in client.GenerateAsync(Copy())) pieces.Add(piece);
        Assert.Equal(a.Text, string.Concat(pieces));
        var hit = await client.GenerateTextAsync(Copy());
        Assert.True(hit.Cached);
        Assert.Equal(a.Text, hit.Text);
        Assert.Equal(1, scheduler.Submitted - submitted0);

        // A catalog change bumps the product's version: the next request is a new key and generates again.
        var changed = await host.Grains.GetGrain<IProductGrain>("p1").Upsert(Shirt(25m));
        Assert.True(changed.Version > product.Version);
        var regenerated = await client.GenerateTextAsync(Copy());
        Assert.False(regenerated.Cached);
        Assert.Equal(2, scheduler.Submitted - submitted0);
        Assert.Equal(2, generator.Calls);
        Assert.NotNull(await host.Grains.GetGrain<IContentCacheGrain>(new ContentKey("p1", "description", ModelVersion, changed.Version).ToGrainKey()).Get());

        // A product the catalog does not know is NotFound; no product or template is plain generation from the prompt.
        var unknown = await Assert.ThrowsAsync<EngineRequestException>(() => client.GenerateTextAsync(Copy("nope")));
        Assert.Equal(ErrorCode.NotFound, unknown.Code);
        var plain = await client.GenerateTextAsync(new GenerateRequest { ProductId = "p1", Prompt = "hello", MaxTokens = 4 });
        Assert.False(plain.Cached);
        Assert.Equal(0, plain.Revision);
        Assert.Equal((byte)CopyReviewStatus.None, plain.ReviewStatus);
        Assert.Equal(3, scheduler.Submitted - submitted0);
        Assert.Equal(2, generator.Calls);
    }
}
