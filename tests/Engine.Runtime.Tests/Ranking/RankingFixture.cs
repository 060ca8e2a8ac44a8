using Engine.Core.Backend;
using Engine.Cpu.Vectors;
using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

/// <summary>A demo catalog of 2000 products indexed with the lexical stand-in encoder (built once per test run).</summary>
internal static class RankingFixture
{
    public const int Dims = 128;

    private static readonly CpuVectorScanner SharedScanner = new(threads: 1);

    /// <summary>The SIMD CPU scanner, one for the test run (its worker threads are not per index).</summary>
    public static IVectorScanner Scanner() => SharedScanner;

    private static readonly Lazy<(IReadOnlyList<CatalogProduct> Products, ProductIndex Index, HashingTextEmbedder Embedder)> Built = new(() =>
    {
        var products = DemoCatalog.Generate(2000, seed: 7);
        var embedder = new HashingTextEmbedder(Dims);
        float[] vectors = CatalogEmbedder.Embed(products, embedder, CatalogEmbeddingMode.ComposedAttributes);
        var index = CatalogIndex.Build(products, vectors, Dims, new CategoryVocabulary(products), Scanner());
        return (products, index, embedder);
    });

    public static IReadOnlyList<CatalogProduct> Products => Built.Value.Products;

    public static RankingPipeline Pipeline(RankingOptions? options = null, ScoringHeads? heads = null) =>
        new(Built.Value.Products, Built.Value.Index, Built.Value.Embedder, heads, options, "test");

    /// <summary>A unit profile vector: the embedding of <paramref name="text"/>.</summary>
    public static float[] Profile(string text)
    {
        var v = new float[Dims];
        Built.Value.Embedder.Embed([text], v);
        return v;
    }
}
