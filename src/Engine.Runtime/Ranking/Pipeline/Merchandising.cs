namespace Engine.Runtime.Ranking;

/// <summary>A product pinned at a 1-based position of the answer (if it passes the request's filter).</summary>
public readonly record struct Pin(string ProductId, int Position);

/// <summary>
/// Merchandising rules: additive score boosts by product or category (scaled by <see cref="BlendWeights.Boost"/>;
/// negative values bury) and pins that put a product at a fixed position. Pins obey the request's filter and the
/// stock rule: a pinned product that is out of stock or outside the price range is not shown.
/// </summary>
public sealed record Merchandising
{
    /// <summary>Product id → score boost.</summary>
    public IReadOnlyDictionary<string, float> Boosts { get; init; } = new Dictionary<string, float>();

    /// <summary>Category name (lower case) → score boost for every product of that category.</summary>
    public IReadOnlyDictionary<string, float> CategoryBoosts { get; init; } = new Dictionary<string, float>();

    /// <summary>Products placed at fixed positions (1-based), in the order given when two ask for one slot.</summary>
    public IReadOnlyList<Pin> Pins { get; init; } = [];

    /// <summary>No boosts, no pins.</summary>
    public static Merchandising None { get; } = new();
}
