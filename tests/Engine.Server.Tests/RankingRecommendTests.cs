using Engine.Cli.Hosting;
using Engine.Client;
using Engine.Cpu.Vectors;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;

namespace Engine.Server.Tests;

/// <summary>
/// Recommend over the real ranking pipeline (<see cref="RankingRecommendHandler"/>), served in process:
/// a small demo catalog with the hashed bag-of-words embedder (deterministic, no model), filters,
/// profiles, arms and reasons as the wire carries them.
/// </summary>
public sealed class RankingRecommendTests : IClassFixture<RankingRecommendTests.Catalog>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly Catalog _catalog;

    public RankingRecommendTests(Catalog catalog) => _catalog = catalog;

    /// <summary>2,000 demo products, built once for the class.</summary>
    public sealed class Catalog : IDisposable
    {
        public const int Products = 2000;
        public Catalog() => Ranking = DemoRanking.Build(Products, new HashingTextEmbedder(), new ReferenceVectorScanner());
        public DemoRanking Ranking { get; }
        public void Dispose() => Ranking.Dispose();
    }

    private async Task<(InProcessServer Host, EngineClient Client, RankingRecommendHandler Handler)> ServeAsync(
        IShopperProfiles? profiles = null, Func<string, string>? armOf = null)
    {
        var handler = new RankingRecommendHandler(_catalog.Ranking.Pipeline, profiles, armOf);
        var host = new InProcessServer(handlers: new ServerHandlers { Recommend = handler, StatsSources = [handler] });
        await Task.Yield();
        return (host, host.Client(), handler);
    }

    [Fact]
    public async Task Category_and_in_stock_filters_reach_the_ranking_and_every_item_carries_a_reason()
    {
        var (host, client, handler) = await ServeAsync();
        await using var _ = host;
        await using var __ = client;
        await using var ___ = handler;
        string category = DemoCatalog.CategoryNames[0];

        var result = await client.RecommendAsync(new RecommendRequest { CustomerId = "cold", K = 10, Category = category, InStockOnly = true }).WaitAsync(Wait);

        Assert.Equal(10, result.Items.Length);
        foreach (var item in result.Items)
        {
            Engine.Runtime.Ranking.CatalogProduct product = _catalog.Ranking.Pipeline.Find(item.ProductId)!;
            Assert.Equal(category, product.Category);
            Assert.True(product.InStock, $"{item.ProductId} is out of stock");
            Assert.False(string.IsNullOrWhiteSpace(item.Reason), $"{item.ProductId} has no reason");
        }
        Assert.True(result.Items.Zip(result.Items.Skip(1)).All(p => p.First.Score >= p.Second.Score), "items are not best first");
        Assert.Contains($"catalog-demo-{Catalog.Products}-seed", result.ModelVersion);
        Assert.StartsWith("rec-", result.RecommendationId);
    }

    [Fact]
    public async Task A_shopper_with_a_profile_gets_a_list_steered_by_it_and_a_cold_shopper_the_popular_one()
    {
        var profile = new float[_catalog.Ranking.Index.Dimensions];
        Assert.True(_catalog.Ranking.Index.TryGetVector("p7", profile));
        var (host, client, handler) = await ServeAsync(new FixedProfiles(new() { ["alice"] = profile }));
        await using var _ = host;
        await using var __ = client;
        await using var ___ = handler;

        var alice = await client.RecommendAsync(new RecommendRequest { CustomerId = "alice", K = 5 }).WaitAsync(Wait);
        var cold = await client.RecommendAsync(new RecommendRequest { CustomerId = "bob", K = 5 }).WaitAsync(Wait);

        Assert.Contains("recent views", alice.Items[0].Reason);
        Assert.DoesNotContain("recent views", cold.Items[0].Reason);
        Assert.NotEqual(alice.Items.Select(i => i.ProductId), cold.Items.Select(i => i.ProductId));
        var stats = await client.StatsAsync("recommend.");
        Assert.Equal(1, stats.Entries.Single(e => e.Name == "recommend.with_profile").Value);
    }

    [Fact]
    public async Task A_query_text_is_ranked_and_an_invalid_request_fails_alone_with_invalid_argument()
    {
        var (host, client, handler) = await ServeAsync(armOf: c => c == "treated" ? "exp-1/treatment" : "");
        await using var _ = host;
        await using var __ = client;
        await using var ___ = handler;

        var tooLong = client.RecommendAsync(new RecommendRequest { CustomerId = "x", K = 5, Query = new string('a', RankingPipeline.MaxQueryChars + 1) });
        var search = client.RecommendAsync(new RecommendRequest { CustomerId = "treated", K = 5, Query = "summer dress" });
        var error = await Assert.ThrowsAsync<EngineRequestException>(() => tooLong.WaitAsync(Wait));
        Assert.Equal(ErrorCode.InvalidArgument, error.Code);

        var result = await search.WaitAsync(Wait);
        Assert.Equal(5, result.Items.Length);
        Assert.Contains(result.Items, i => i.Reason.Contains("summer dress", StringComparison.Ordinal));
        Assert.Equal("exp-1/treatment", result.ExperimentArm);
    }

    [Fact]
    public async Task A_profile_read_slower_than_the_budget_is_skipped_and_the_request_still_answers()
    {
        var slow = new SlowProfiles();
        var (host, client, handler) = await ServeAsync(slow);
        await using var _ = host;
        await using var __ = client;
        await using var ___ = handler;

        var result = await client.RecommendAsync(new RecommendRequest { CustomerId = "slow", K = 3 }).WaitAsync(Wait);

        Assert.Equal(3, result.Items.Length);
        Assert.Equal(1, handler.Batcher.Items);
        var stats = await client.StatsAsync("recommend.");
        Assert.Equal(1, stats.Entries.Single(e => e.Name == "recommend.profile_misses").Value);
        slow.Release.SetResult();
    }

    [Fact]
    public async Task The_control_plane_sees_the_index_vectors_of_catalog_products_and_null_for_unknown_ones()
    {
        var embeddings = new IndexProductEmbeddings(_catalog.Ranking.Index);
        float[]? known = await embeddings.GetAsync("p0");
        Assert.NotNull(known);
        Assert.Equal(_catalog.Ranking.Index.Dimensions, known.Length);
        float norm = MathF.Sqrt(known.Sum(x => x * x));
        Assert.InRange(norm, 0.98f, 1.02f); // unit vectors, int8-rounded
        Assert.Null(await embeddings.GetAsync("no-such-product"));
    }

    private sealed class FixedProfiles(Dictionary<string, float[]> profiles) : IShopperProfiles
    {
        public ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken) =>
            ValueTask.FromResult(profiles.TryGetValue(customerId, out var v) ? v : null);
    }

    private sealed class SlowProfiles : IShopperProfiles
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken)
        {
            await Release.Task;
            return null;
        }
    }
}
