using Engine.Runtime.Encoding;

namespace Engine.Runtime.Ranking;

/// <summary>How product vectors are made from a catalog.</summary>
public enum CatalogEmbeddingMode
{
    /// <summary>Each product's <see cref="CatalogProduct.EmbeddingText"/> through the encoder (the real thing; about
    /// 5 ms per product for MiniLM on 2 cores, so minutes for 100k).</summary>
    FullText = 0,

    /// <summary>Demo fast path: each distinct attribute phrase (product type, category, material, colour, style) is
    /// embedded once and a product's vector is the normalized weighted sum of its phrases' vectors. Hundreds of encoder
    /// calls instead of one per product; an approximation for demo catalogs only (it ignores the title's word order,
    /// the brand and the description).</summary>
    ComposedAttributes = 1,
}

/// <summary>Turns catalog products into unit vectors with an <see cref="ITextEmbedder"/>.</summary>
public static class CatalogEmbedder
{
    /// <summary>Texts per encoder call in <see cref="CatalogEmbeddingMode.FullText"/> (amortizes per-call overhead,
    /// bounds memory; progress is reported per batch).</summary>
    public const int BatchSize = 64;

    /// <summary>Weights of the attribute phrases in <see cref="CatalogEmbeddingMode.ComposedAttributes"/>: what a product
    /// is matters most; material and colour next, since they are what tells products of one type apart in a query
    /// ("red leather bags"); the category adds little beyond the type; style last.</summary>
    public static readonly (string Attribute, float Weight)[] AttributeWeights =
        [("productType", 0.30f), ("category", 0.10f), ("material", 0.25f), ("colour", 0.25f), ("style", 0.10f)];

    /// <summary>Embeds every product: returns [products.Count, embedder.Dimensions] f32, rows L2-normalized.</summary>
    public static float[] Embed(IReadOnlyList<CatalogProduct> products, ITextEmbedder embedder, CatalogEmbeddingMode mode,
                                IProgress<WorkProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(products);
        ArgumentNullException.ThrowIfNull(embedder);
        return mode switch
        {
            CatalogEmbeddingMode.FullText => EmbedFullText(products, embedder, progress),
            CatalogEmbeddingMode.ComposedAttributes => EmbedComposed(products, embedder, progress),
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown embedding mode"),
        };
    }

    private static float[] EmbedFullText(IReadOnlyList<CatalogProduct> products, ITextEmbedder embedder, IProgress<WorkProgress>? progress)
    {
        int dims = embedder.Dimensions;
        var vectors = new float[(long)products.Count * dims];
        var batch = new List<string>(BatchSize);
        for (int start = 0; start < products.Count; start += BatchSize)
        {
            batch.Clear();
            int end = Math.Min(products.Count, start + BatchSize);
            for (int i = start; i < end; i++) batch.Add(products[i].EmbeddingText);
            embedder.Embed(batch, vectors.AsSpan(start * dims, batch.Count * dims));
            progress?.Report(new WorkProgress(end, products.Count));
        }
        return vectors;
    }

    private static string Phrase(CatalogProduct p, int attribute) => attribute switch
    {
        0 => p.ProductType,
        1 => p.Category,
        2 => p.Material,
        3 => p.Colour,
        _ => p.Style,
    };

    private static float[] EmbedComposed(IReadOnlyList<CatalogProduct> products, ITextEmbedder embedder, IProgress<WorkProgress>? progress)
    {
        int dims = embedder.Dimensions;
        // Distinct phrases, in first-seen order (deterministic).
        var phraseIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var phrases = new List<string>();
        foreach (var p in products)
            for (int a = 0; a < AttributeWeights.Length; a++)
            {
                string s = Phrase(p, a);
                if (s.Length > 0 && phraseIds.TryAdd(s, phrases.Count)) phrases.Add(s);
            }
        // Title as fallback for products with no attributes at all (a hand-written catalog line with a title only).
        var fallbackTitles = new Dictionary<int, int>();
        for (int i = 0; i < products.Count; i++)
        {
            bool any = false;
            for (int a = 0; a < AttributeWeights.Length && !any; a++) any = Phrase(products[i], a).Length > 0;
            if (!any && phraseIds.TryAdd(products[i].Title, phrases.Count)) phrases.Add(products[i].Title);
            if (!any) fallbackTitles[i] = phraseIds[products[i].Title];
        }

        var phraseVectors = new float[(long)phrases.Count * dims]; // [phrases, dims] f32
        long total = phrases.Count + products.Count;
        for (int start = 0; start < phrases.Count; start += BatchSize)
        {
            int end = Math.Min(phrases.Count, start + BatchSize);
            embedder.Embed(phrases.GetRange(start, end - start), phraseVectors.AsSpan(start * dims, (end - start) * dims));
            progress?.Report(new WorkProgress(end, total));
        }

        var vectors = new float[(long)products.Count * dims];
        for (int i = 0; i < products.Count; i++)
        {
            var row = vectors.AsSpan(i * dims, dims);
            if (fallbackTitles.TryGetValue(i, out int t))
                phraseVectors.AsSpan(t * dims, dims).CopyTo(row);
            else
                for (int a = 0; a < AttributeWeights.Length; a++)
                {
                    string s = Phrase(products[i], a);
                    if (s.Length == 0) continue;
                    var pv = phraseVectors.AsSpan(phraseIds[s] * dims, dims);
                    float w = AttributeWeights[a].Weight;
                    for (int d = 0; d < dims; d++) row[d] += w * pv[d];
                }
            Normalize(row);
            if ((i & 4095) == 4095) progress?.Report(new WorkProgress(phrases.Count + i + 1, total));
        }
        progress?.Report(new WorkProgress(total, total));
        return vectors;
    }

    internal static void Normalize(Span<float> v)
    {
        float norm = 0;
        foreach (float x in v) norm += x * x;
        if (norm <= 0 || !float.IsFinite(norm)) return;
        float inv = 1 / MathF.Sqrt(norm);
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }
}
