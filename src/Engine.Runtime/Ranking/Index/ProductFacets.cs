namespace Engine.Runtime.Ranking;

/// <summary>What filters see of a product: its category id, its price (finite, ≥ 0) and whether it is in stock.</summary>
public readonly record struct ProductFacets(int Category, float Price, bool InStock);

/// <summary>One search result: the product and its score (≈ cosine similarity when the vectors are unit length).</summary>
public readonly record struct SearchHit(string ProductId, float Score);
