using Engine.Control.Catalog;
using Engine.Control.Content;

namespace Engine.Control.Tests;

[Collection(ClusterCollection.Name)]
public class ContentCacheGrainTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;
    private static readonly GenerationParameters Params = new(0.7f, 0.9f, 64, 42);

    private async Task<ProductInfo> Shirt() =>
        await _client.GetGrain<IProductGrain>(TestData.Id("shirt")).Upsert(TestData.Product("Shirt", [1], ("material", "cotton")));

    private IContentCacheGrain Cache(ProductInfo p, string template) =>
        _client.GetGrain<IContentCacheGrain>(new ContentKey(p.ProductId, template, "m1", p.Version).ToGrainKey());

    [Fact]
    public async Task Concurrent_requests_for_one_key_generate_once()
    {
        var shirt = await Shirt();
        var cache = Cache(shirt, "default");
        var entries = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => cache.GetOrGenerate(Params)));
        Assert.Equal(1, ScriptedGenerator.Calls[shirt.ProductId]);
        Assert.All(entries, e => Assert.Equal((1, entries[0].Text), (e.Revision, e.Text)));
        var entry = entries[0];
        Assert.Equal(ReviewStatus.AutoPublished, entry.Status);
        Assert.True(entry.Servable);
        Assert.Equal(new Attribution("m1", Params), entry.Attribution);
        Assert.Equal(entry.Text, (await cache.GetOrGenerate(Params with { Seed = 7 })).Text); // cached: no regeneration
        Assert.Equal(1, ScriptedGenerator.Calls[shirt.ProductId]);
    }

    [Fact]
    public async Task Invalid_or_unsure_copy_waits_for_review_ordered_by_traffic()
    {
        var busy = await Shirt();
        var quiet = await Shirt();
        await _client.GetGrain<IProductGrain>(busy.ProductId).AddTraffic(1_000_000);
        var invalid = await Cache(quiet, "unsupported").GetOrGenerate(Params);
        Assert.Equal(ReviewStatus.PendingReview, invalid.Status);
        Assert.False(invalid.Servable);
        Assert.Contains(invalid.Issues, i => i is { Kind: ValidationIssueKind.UnsupportedMaterial, Term: "silk" });
        Assert.Contains(invalid.Issues, i => i is { Kind: ValidationIssueKind.UnsupportedFeature, Term: "waterproof" });
        Assert.Contains(invalid.Issues, i => i is { Kind: ValidationIssueKind.UnsupportedNumber, Term: "50" });
        var unsure = await Cache(busy, "unsure").GetOrGenerate(Params);
        Assert.Equal(ReviewStatus.PendingReview, unsure.Status);
        Assert.Empty(unsure.Issues);

        var queue = await _client.GetGrain<IReviewQueueGrain>(0).Peek(1000);
        var busyAt = queue.ToList().FindIndex(i => i.Key == unsure.Key);
        var quietAt = queue.ToList().FindIndex(i => i.Key == invalid.Key);
        Assert.True(busyAt >= 0 && quietAt > busyAt, "the busier product's copy is reviewed first");

        var approved = await Cache(busy, "unsure").Review(approve: true);
        Assert.Equal(ReviewStatus.Approved, approved.Status);
        Assert.DoesNotContain(await _client.GetGrain<IReviewQueueGrain>(0).Peek(1000), i => i.Key == unsure.Key);
    }

    [Fact]
    public async Task History_keeps_revisions_and_rollback_restores_one()
    {
        var shirt = await Shirt();
        var cache = Cache(shirt, "default");
        var first = await cache.GetOrGenerate(Params);
        var second = await cache.Regenerate(Params with { Seed = 99 });
        Assert.Equal(2, second.Revision);
        Assert.NotEqual(first.Text, second.Text);
        Assert.Equal(99UL, second.Attribution.Parameters.Seed);
        Assert.Equal(2, (await cache.Get())!.Revision);
        Assert.Equal(first.Text, (await cache.Rollback(1)).Text);
        Assert.Equal(1, (await cache.Get())!.Revision);
        Assert.Equal(2, (await cache.GetHistory()).Count);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => cache.Rollback(5));
    }

    [Fact]
    public async Task Unknown_products_and_stale_versions_are_refused()
    {
        var missing = _client.GetGrain<IContentCacheGrain>(new ContentKey(TestData.Id("none"), "default", "m1", 1).ToGrainKey());
        var ex = await Assert.ThrowsAsync<UnknownEntityException>(() => missing.GetOrGenerate(Params));
        Assert.Contains("not in the catalog", ex.Message);
        var shirt = await Shirt();
        var stale = _client.GetGrain<IContentCacheGrain>(new ContentKey(shirt.ProductId, "default", "m1", shirt.Version - 1).ToGrainKey());
        await Assert.ThrowsAsync<UnknownEntityException>(() => stale.GetOrGenerate(Params));
    }
}
