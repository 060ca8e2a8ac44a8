namespace Engine.Control.Catalog;

/// <summary>A product as the catalog holds it.</summary>
/// <param name="ProductId">Catalog id.</param>
/// <param name="Title">Display title.</param>
/// <param name="Category">Category path, e.g. "apparel/shirts".</param>
/// <param name="Attributes">Facts the copy may state (material, size, color, features...).</param>
/// <param name="Price">Price in the store currency.</param>
/// <param name="Stock">Units in stock.</param>
/// <param name="BackorderRisk">Probability in [0, 1] that an order cannot ship on time.</param>
/// <param name="Embedding">Product vector for ranking and session profiles, or null before it is
/// embedded. // [dim] f32</param>
/// <param name="Version">Catalog version at this product's last change (a change bumps the catalog
/// version; content cache keys include it).</param>
[GenerateSerializer, Immutable]
public sealed record ProductInfo(
    [property: Id(0)] string ProductId,
    [property: Id(1)] string Title,
    [property: Id(2)] string Category,
    [property: Id(3)] IReadOnlyDictionary<string, string> Attributes,
    [property: Id(4)] decimal Price,
    [property: Id(5)] int Stock,
    [property: Id(6)] float BackorderRisk,
    [property: Id(7)] float[]? Embedding,
    [property: Id(8)] long Version);

/// <summary>An admin upsert of a product: every field replaces the stored one.</summary>
[GenerateSerializer, Immutable]
public sealed record ProductUpdate(
    [property: Id(0)] string Title,
    [property: Id(1)] string Category,
    [property: Id(2)] IReadOnlyDictionary<string, string> Attributes,
    [property: Id(3)] decimal Price,
    [property: Id(4)] int Stock,
    [property: Id(5)] float BackorderRisk,
    [property: Id(6)] float[]? Embedding);

/// <summary>One product change in the catalog's change log.</summary>
[GenerateSerializer, Immutable]
public sealed record CatalogChange([property: Id(0)] string ProductId, [property: Id(1)] long Version);
