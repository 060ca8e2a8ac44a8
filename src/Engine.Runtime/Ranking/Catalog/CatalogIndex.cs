using System.Text.Json;
using Engine.Core.Backend;
using Engine.Runtime.Encoding;

namespace Engine.Runtime.Ranking;

/// <summary>
/// Builds the <see cref="ProductIndex"/> of a catalog, and caches it beside the catalog file: <c>F.index</c> (the
/// index snapshot) and <c>F.index.json</c> (what it was built from: the catalog's SHA-256, the encoder's model version,
/// the embedding mode, the dimensions). A cache whose record does not match, or whose snapshot does not load, is
/// rebuilt; embedding is the slow part (minutes for 100k products with MiniLM), so it is done once per catalog.
/// </summary>
public static class CatalogIndex
{
    /// <summary>Suffix of the index snapshot beside the catalog file.</summary>
    public const string IndexSuffix = ".index";

    /// <summary>Suffix of the record of what the snapshot was built from.</summary>
    public const string RecordSuffix = ".index.json";

    /// <summary>What a cached index was built from.</summary>
    public sealed record BuildRecord(string CatalogSha256, string EmbedderVersion, CatalogEmbeddingMode Mode, int Dimensions, int Count);

    /// <summary>Facets of a product as the index filters see them.</summary>
    public static ProductFacets FacetsOf(CatalogProduct p, CategoryVocabulary categories) =>
        new(categories.IdOf(p.Category), p.Price, p.InStock);

    /// <summary>A new index over <paramref name="products"/> with their <paramref name="vectors"/> [n, dims] f32.</summary>
    public static ProductIndex Build(IReadOnlyList<CatalogProduct> products, ReadOnlySpan<float> vectors, int dimensions,
                                     CategoryVocabulary categories, IVectorScanner scanner)
    {
        if (vectors.Length != (long)products.Count * dimensions)
            throw new ArgumentException($"vectors must be [{products.Count}, {dimensions}]", nameof(vectors));
        var index = new ProductIndex(dimensions, scanner);
        try
        {
            const int chunk = 8192; // bounded temporary lists per upsert call
            for (int start = 0; start < products.Count; start += chunk)
            {
                int n = Math.Min(chunk, products.Count - start);
                var ids = new string[n];
                var facets = new ProductFacets[n];
                for (int i = 0; i < n; i++)
                {
                    ids[i] = products[start + i].Id;
                    facets[i] = FacetsOf(products[start + i], categories);
                }
                index.UpsertBatch(ids, vectors.Slice(start * dimensions, n * dimensions), facets);
            }
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The index of the catalog at <paramref name="catalogPath"/>: loaded from its cache when that was built from the
    /// same catalog bytes, encoder and mode; else embedded (reporting progress), built and saved. <paramref name="rebuilt"/>
    /// says which happened. A cache that cannot be written (read-only folder) is skipped, not an error.
    /// </summary>
    public static ProductIndex LoadOrBuild(string catalogPath, LoadedCatalog catalog, ITextEmbedder embedder, CatalogEmbeddingMode mode,
                                           IVectorScanner scanner, IProgress<WorkProgress>? progress, out bool rebuilt)
    {
        var categories = new CategoryVocabulary(catalog.Products);
        var wanted = new BuildRecord(catalog.Sha256, embedder.ModelVersion, mode, embedder.Dimensions, catalog.Products.Count);
        string indexPath = catalogPath + IndexSuffix, recordPath = catalogPath + RecordSuffix;
        if (TryLoad(indexPath, recordPath, wanted, scanner) is { } cached)
        {
            rebuilt = false;
            return cached;
        }

        float[] vectors = CatalogEmbedder.Embed(catalog.Products, embedder, mode, progress);
        var index = Build(catalog.Products, vectors, embedder.Dimensions, categories, scanner);
        try
        {
            index.Save(indexPath);
            File.WriteAllText(recordPath, JsonSerializer.Serialize(wanted));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No cache then; the index in memory is complete.
        }
        rebuilt = true;
        return index;
    }

    private static ProductIndex? TryLoad(string indexPath, string recordPath, BuildRecord wanted, IVectorScanner scanner)
    {
        if (!File.Exists(indexPath) || !File.Exists(recordPath)) return null;
        try
        {
            var record = JsonSerializer.Deserialize<BuildRecord>(File.ReadAllText(recordPath));
            if (record != wanted) return null;
            var index = ProductIndex.Load(indexPath, scanner);
            // A version-1 snapshot has no rescoring layer: rebuild rather than rank at int8 precision for good.
            if (index.Count == wanted.Count && index.Dimensions == wanted.Dimensions && !index.LoadedWithoutResidual) return index;
            index.Dispose();
            return null;
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or IOException or EndOfStreamException or ArgumentException)
        {
            return null; // a damaged cache is rebuilt
        }
    }
}
