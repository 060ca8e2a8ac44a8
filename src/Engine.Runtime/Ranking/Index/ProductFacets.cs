namespace Engine.Runtime.Ranking;

/// <summary>What filters see of a product: its category id, its price (finite, ≥ 0) and whether it is in stock.</summary>
public readonly record struct ProductFacets(int Category, float Price, bool InStock);

/// <summary>One search result: the product and its score (≈ cosine similarity when the vectors are unit length).</summary>
public readonly record struct SearchHit(string ProductId, float Score);

/// <summary>
/// A <see cref="SearchHit"/> with the index slot it came from and that slot's occupancy (bumped when its product is removed),
/// inside the assembly: <see cref="ProductIndex.SearchSlots"/>.
/// </summary>
internal readonly record struct SlotHit(int Slot, int Occupancy, string ProductId, float Score);
