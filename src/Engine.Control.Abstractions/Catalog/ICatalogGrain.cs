namespace Engine.Control.Catalog;

/// <summary>The catalog's version clock and change log (key: catalog name, "default").</summary>
public interface ICatalogGrain : IGrainWithStringKey
{
    /// <summary>The catalog name used when there is only one.</summary>
    const string Default = "default";

    /// <summary>Records a change of <paramref name="productId"/>: bumps and returns the catalog
    /// version, and tells the ranking index (<see cref="ICatalogIndexSink"/>).</summary>
    Task<long> RecordChange(string productId);

    /// <summary>The current catalog version (0 when empty).</summary>
    Task<long> GetVersion();

    /// <summary>Products changed after <paramref name="version"/>, each with the version of its
    /// latest change, oldest first: how an index catches up.</summary>
    Task<IReadOnlyList<CatalogChange>> GetChangesSince(long version);
}

/// <summary>Told of every catalog change, on the silo that owns the catalog grain: the ranking
/// index implements it to re-read the product. Registered in DI; none by default.</summary>
public interface ICatalogIndexSink
{
    /// <summary>Called after the change is durable.</summary>
    Task OnProductChangedAsync(string productId, long catalogVersion);
}

/// <summary>Product embeddings for session profiles. The default reads product grains; the ranking
/// index may provide a faster one.</summary>
public interface IProductEmbeddings
{
    /// <summary>The product's vector, or null when the product is unknown (an empty array when it
    /// is known but not embedded yet). // [dim] f32</summary>
    ValueTask<float[]?> GetAsync(string productId);
}
