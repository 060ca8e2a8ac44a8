namespace Engine.Runtime.Ranking;

public sealed partial class RankingPipeline
{
    /// <summary>
    /// The features the scoring heads saw for <paramref name="items"/> of a result of <paramref name="request"/>:
    /// what exposure logging records (<see cref="ExposureContext"/>), recomputed off the request path from each item's
    /// <see cref="RankedItem.Similarity"/> and the request's filters (no encoder call, no scan). A product no longer
    /// in this pipeline's catalog gets a row of zeros.
    /// </summary>
    /// <param name="request">The request as ranked.</param>
    /// <param name="items">Its result's items.</param>
    /// <param name="features">[items, <see cref="RankingFeatures.Count"/>] f32, filled.</param>
    public void ComputeFeatures(RankRequest request, IReadOnlyList<RankedItem> items, Span<float> features)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(items);
        if (features.Length != items.Count * RankingFeatures.Count)
            throw new ArgumentException($"expected {items.Count} x {RankingFeatures.Count} features, got {features.Length}", nameof(features));
        var categories = PlanOf(request).Categories;
        for (int i = 0; i < items.Count; i++)
        {
            var row = features.Slice(i * RankingFeatures.Count, RankingFeatures.Count);
            if (!_byId.TryGetValue(items[i].ProductId, out int p)) { row.Clear(); continue; }
            int category = _category[p];
            RankingFeatures.Compute(row, items[i].Similarity, _products[p], category >= 0 ? _medianLogPrice[category] : 0, categories?.Contains(category) == true);
        }
    }
}
