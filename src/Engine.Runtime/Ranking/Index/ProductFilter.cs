namespace Engine.Runtime.Ranking;

/// <summary>
/// A query's filter; every field optional. Filtering is exact: the scan runs under a bitmap of the products
/// that pass, so a filter never costs recall (the top k of the products that pass, however few pass).
/// </summary>
public sealed record ProductFilter
{
    /// <summary>Only products in stock.</summary>
    public bool InStockOnly { get; init; }

    /// <summary>Only products of these category ids; null = any category (an empty list matches nothing).</summary>
    public IReadOnlyList<int>? Categories { get; init; }

    /// <summary>Lowest price, inclusive.</summary>
    public float MinPrice { get; init; }

    /// <summary>Highest price, inclusive.</summary>
    public float MaxPrice { get; init; } = float.PositiveInfinity;

    /// <summary>The filter that lets every product through.</summary>
    public static ProductFilter None { get; } = new();
}
