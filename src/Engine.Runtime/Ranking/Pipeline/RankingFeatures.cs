namespace Engine.Runtime.Ranking;

/// <summary>
/// The query–item features the scoring heads read, in a fixed order. Names are what the heads file lists;
/// append new features at the end (a heads file that lacks a feature gives it weight 0).
/// </summary>
public static class RankingFeatures
{
    /// <summary>Cosine similarity between the query (or profile) vector and the product vector; 0 on the popularity path.</summary>
    public const int Similarity = 0;
    /// <summary>ln(1 + price).</summary>
    public const int LogPrice = 1;
    /// <summary>ln(1 + price) − ln(1 + median price of the product's category): cheap or dear for its kind.</summary>
    public const int RelativePrice = 2;
    /// <summary>Margin fraction in [0, 1].</summary>
    public const int Margin = 3;
    /// <summary>1 when the request names categories (explicitly or by words in the query) and the product is in one; else 0.</summary>
    public const int CategoryMatch = 4;
    /// <summary>Popularity in [0, 1].</summary>
    public const int Popularity = 5;
    /// <summary>Backorder risk in [0, 1].</summary>
    public const int BackorderRisk = 6;
    /// <summary>1 in stock, 0 out of stock.</summary>
    public const int InStock = 7;

    /// <summary>Number of features.</summary>
    public const int Count = 8;

    /// <summary>Feature names in order (the heads file's "features").</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["similarity", "log_price", "relative_price", "margin", "category_match", "popularity", "backorder_risk", "in_stock"];

    /// <summary>Fills <paramref name="features"/> [Count] for one candidate.</summary>
    public static void Compute(Span<float> features, float similarity, CatalogProduct product, float categoryMedianLogPrice, bool categoryMatch)
    {
        ArgumentNullException.ThrowIfNull(product);
        Compute(features, similarity, ProductFacts.Of(product), categoryMedianLogPrice, categoryMatch);
    }

    /// <summary>The same from a product's <see cref="ProductFacts"/> (the ranking's hot path: no product object read).</summary>
    internal static void Compute(Span<float> features, float similarity, in ProductFacts product, float categoryMedianLogPrice, bool categoryMatch)
    {
        features[Similarity] = similarity;
        features[LogPrice] = product.LogPrice;
        features[RelativePrice] = product.LogPrice - categoryMedianLogPrice;
        features[Margin] = product.Margin;
        features[CategoryMatch] = categoryMatch ? 1 : 0;
        features[Popularity] = product.Popularity;
        features[BackorderRisk] = product.BackorderRisk;
        features[InStock] = product.InStock ? 1 : 0;
    }
}

/// <summary>
/// The numbers of a <see cref="CatalogProduct"/> that filtering and scoring read for every candidate, packed (24 bytes) in
/// one array per pipeline: a candidate costs one cache line of this array instead of its product object's.
/// </summary>
internal readonly record struct ProductFacts(float Price, float LogPrice, float Margin, float BackorderRisk, float Popularity, bool InStock)
{
    /// <summary>The facts of <paramref name="p"/> (LogPrice = ln(1 + price)).</summary>
    public static ProductFacts Of(CatalogProduct p) => new(p.Price, MathF.Log(1 + p.Price), p.Margin, p.BackorderRisk, p.Popularity, p.InStock);
}
