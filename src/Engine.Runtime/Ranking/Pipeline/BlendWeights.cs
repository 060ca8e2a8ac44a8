namespace Engine.Runtime.Ranking;

/// <summary>
/// How the pipeline turns a candidate's heads and business facts into one score (see Ranking/README.md):
/// <code>
/// score = Similarity·sim + Click·p(click) + Purchase·p(purchase)·(1 − p(return))
///       + Margin·margin − ReturnRisk·p(return) − BackorderRisk·backorderRisk + Boost·boost
/// </code>
/// with p(purchase) = p(click)·p(add-to-cart | click)·p(purchase | add-to-cart). The service default comes from
/// configuration (<see cref="RankingOptions.Blend"/>); an experiment arm overrides it per request
/// (<see cref="RankRequest.Blend"/>).
/// </summary>
public sealed record BlendWeights
{
    /// <summary>Weight of the vector similarity (cosine, about [-1, 1]) between the shopper or query and the product.
    /// Relevance leads: cosines of one query's candidates differ by hundredths, so this weight is the largest.</summary>
    public float Similarity { get; init; } = 3.0f;

    /// <summary>Weight of p(click).</summary>
    public float Click { get; init; } = 0.5f;

    /// <summary>Weight of the probability that an exposure ends in a kept purchase (typically 0.001 to 0.1, hence large).</summary>
    public float Purchase { get; init; } = 4.0f;

    /// <summary>Weight of the product's margin fraction (favours profitable products among similar ones).</summary>
    public float Margin { get; init; } = 0.25f;

    /// <summary>Penalty per unit of p(return | purchase).</summary>
    public float ReturnRisk { get; init; } = 0.3f;

    /// <summary>Penalty per unit of backorder risk (products that may not ship on time rank lower).</summary>
    public float BackorderRisk { get; init; } = 0.5f;

    /// <summary>Weight of merchandising boosts (<see cref="Merchandising.Boosts"/>, <see cref="Merchandising.CategoryBoosts"/>).</summary>
    public float Boost { get; init; } = 1.0f;

    /// <summary>When a request has both a query and a profile vector: the profile's share of the blended query vector
    /// (0 = the text alone, 1 = the profile alone).</summary>
    public float ProfileMix { get; init; } = 0.3f;

    /// <summary>The service default.</summary>
    public static BlendWeights Default { get; } = new();

    /// <summary>Checks every weight is finite and <see cref="ProfileMix"/> is in [0, 1]; null when valid, else why not.</summary>
    public string? Validate()
    {
        float[] all = [Similarity, Click, Purchase, Margin, ReturnRisk, BackorderRisk, Boost, ProfileMix];
        if (all.Any(w => !float.IsFinite(w))) return "blend weights must be finite";
        if (ProfileMix is < 0 or > 1) return $"blend ProfileMix {ProfileMix} must be in [0, 1]";
        return null;
    }
}
