namespace Engine.Control.Catalog;

/// <summary>Default <see cref="IProductEmbeddings"/>: asks the product grain (one call per product
/// event). The ranking index can register a local lookup instead.</summary>
internal sealed class GrainProductEmbeddings(IGrainFactory grains) : IProductEmbeddings
{
    public async ValueTask<float[]?> GetAsync(string productId)
    {
        var info = await grains.GetGrain<IProductGrain>(productId).Get();
        return info is null ? null : info.Embedding ?? [];
    }
}
