using Engine.Control.Catalog;

namespace Engine.Control.Tests;

[Collection(ClusterCollection.Name)]
public class CatalogGrainTests(ClusterFixture fixture)
{
    private readonly IClusterClient _client = fixture.Client;

    [Fact]
    public async Task A_change_bumps_the_catalog_version_and_tells_the_index()
    {
        var id = TestData.Id("p");
        var product = _client.GetGrain<IProductGrain>(id);
        var catalog = _client.GetGrain<ICatalogGrain>(ICatalogGrain.Default);
        var v1 = (await product.Upsert(TestData.Product("Mug", [1, 2], ("material", "ceramic")))).Version;
        Assert.True(await catalog.GetVersion() >= v1);
        var same = await product.Upsert(TestData.Product("Mug", [1, 2], ("material", "ceramic")));
        Assert.Equal(v1, same.Version); // an identical upsert is not a change
        var v2 = (await product.AdjustStock(-3)).Version;
        Assert.True(v2 > v1);
        Assert.Equal(7, (await product.Get())!.Stock);
        Assert.Contains(new CatalogChange(id, v2), await catalog.GetChangesSince(v1));
        Assert.DoesNotContain(await catalog.GetChangesSince(v2), c => c.ProductId == id);
        Assert.Contains((id, v2), RecordingIndexSink.Seen);
    }

    [Fact]
    public async Task Bad_product_data_is_refused_with_a_message()
    {
        var product = _client.GetGrain<IProductGrain>(TestData.Id("p"));
        var ok = TestData.Product("Lamp", [1]);
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => product.Upsert(ok with { Price = -1 }));
        Assert.Contains("price", ex.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => product.Upsert(ok with { BackorderRisk = 1.5f }));
        await Assert.ThrowsAsync<ArgumentException>(() => product.Upsert(ok with { Title = " " }));
        await Assert.ThrowsAsync<UnknownEntityException>(() => product.AdjustStock(1));
        await product.Upsert(ok);
        await Assert.ThrowsAsync<ArgumentException>(() => product.AdjustStock(-11));
    }
}
