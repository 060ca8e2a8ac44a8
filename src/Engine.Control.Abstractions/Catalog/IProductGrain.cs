namespace Engine.Control.Catalog;

/// <summary>One product (key: product id).</summary>
public interface IProductGrain : IGrainWithStringKey
{
    /// <summary>Creates or replaces the product. A real change bumps the catalog version and
    /// returns the product with it; an identical update changes nothing.</summary>
    /// <exception cref="ArgumentException">Negative price or stock, risk outside [0, 1], empty title.</exception>
    Task<ProductInfo> Upsert(ProductUpdate update);

    /// <summary>The product, or null when the catalog does not have it.</summary>
    [AlwaysInterleave]
    Task<ProductInfo?> Get();

    /// <summary>Adds <paramref name="delta"/> units to stock (negative for sales); a change of stock
    /// bumps the catalog version like any other change.</summary>
    Task<ProductInfo> AdjustStock(int delta);

    /// <summary>Adds views counted by the feedback pre-aggregators (orders the review queue).</summary>
    Task AddTraffic(long views);

    /// <summary>Views counted so far.</summary>
    [AlwaysInterleave]
    Task<long> GetTraffic();
}
