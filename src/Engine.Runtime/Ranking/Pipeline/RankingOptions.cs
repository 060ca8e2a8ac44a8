namespace Engine.Runtime.Ranking;

/// <summary>Service-level settings of the <see cref="RankingPipeline"/> (bound from configuration by the host).</summary>
public sealed record RankingOptions
{
    /// <summary>Default blend weights (an experiment arm overrides them per request).</summary>
    public BlendWeights Blend { get; init; } = BlendWeights.Default;

    /// <summary>Default merchandising rules (a request may bring its own).</summary>
    public Merchandising Merchandising { get; init; } = Merchandising.None;

    /// <summary>Candidates fetched from the index per requested item, before scoring and rules reorder them.</summary>
    public int CandidatesPerItem { get; init; } = 5;

    /// <summary>Fewest candidates fetched, so that small K still lets the heads and rules choose among enough.</summary>
    public int MinCandidates { get; init; } = 100;

    /// <summary>Category words in a query text ("bags", "sneakers") restrict the search to those categories.</summary>
    public bool CategoryWordsFilter { get; init; } = true;
}
