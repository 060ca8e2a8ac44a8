namespace Engine.Runtime.Ranking;

/// <summary>
/// One ranking request. Candidates come from the shopper's <see cref="ProfileVector"/>, the embedded
/// <see cref="QueryText"/>, or both blended (<see cref="BlendWeights.ProfileMix"/>); with neither, from popularity
/// (a cold shopper on a home page).
/// </summary>
public sealed record RankRequest
{
    /// <summary>The shopper's profile vector [dims] f32 (any norm; normalized here), or null.</summary>
    public float[]? ProfileVector { get; init; }

    /// <summary>A search text ("summer dresses under $50"); a price range and category words in it become filters.</summary>
    public string? QueryText { get; init; }

    /// <summary>How many items to return, 1 to <see cref="RankingPipeline.MaxK"/>.</summary>
    public int K { get; init; } = 20;

    /// <summary>Explicit filter, intersected with what the query text implies. Out-of-stock products are removed
    /// unless <see cref="AllowOutOfStock"/>, whatever this says.</summary>
    public ProductFilter Filter { get; init; } = ProductFilter.None;

    /// <summary>A category name to restrict to (the page's category), or null.</summary>
    public string? Category { get; init; }

    /// <summary>Blend weights of the experiment arm, or null for the service default.</summary>
    public BlendWeights? Blend { get; init; }

    /// <summary>Merchandising rules for this request, or null for the service default.</summary>
    public Merchandising? Merchandising { get; init; }

    /// <summary>Show out-of-stock products (ranked lower by the heads) instead of dropping them.</summary>
    public bool AllowOutOfStock { get; init; }
}

/// <summary>One ranked product with its final score and a short human-readable reason.</summary>
public sealed record RankedItem(string ProductId, float Score, string Reason)
{
    /// <summary>The similarity feature the scoring heads saw for this item (0 on the popularity path and for a pin that
    /// was no candidate); with the request it recomputes every feature (<see cref="RankingPipeline.ComputeFeatures"/>).</summary>
    public float Similarity { get; init; }
}

/// <summary>The answer: items best first (at most K), and the version of everything that produced them.</summary>
public sealed record RankResult(IReadOnlyList<RankedItem> Items, string ModelVersion);
