using System.Buffers;
using Engine.Core.Backend;
using Engine.Runtime.Encoding;

namespace Engine.Runtime.Ranking;

/// <summary>
/// Ranks catalog products for a shopper or a search text: candidates by vector similarity from the
/// <see cref="ProductIndex"/> (exact filtered top-k) → the four <see cref="ScoringHeads"/> → business rules (stock,
/// backorder risk, margin, boosts, pins) → top k with a reason per item. Immutable after construction and safe to
/// call from many threads (the index's searches are). See Ranking/README.md for the score formula and the reasons.
/// </summary>
public sealed partial class RankingPipeline : IDisposable
{
    /// <summary>Largest K a request may ask for.</summary>
    public const int MaxK = 1000;

    private readonly CatalogProduct[] _products;
    private readonly Dictionary<string, int> _byId;
    private readonly int[] _category;               // [products] category id
    private readonly ProductFacts[] _facts;         // [products] what Passes and Score read
    private readonly float[] _medianLogPrice;       // [categories] median ln(1 + price)
    private readonly int[] _byPopularity;           // product positions, most popular first
    private readonly ProductIndex _index;
    private readonly ITextEmbedder? _embedder;
    private readonly int[] _productOfSlot;          // [index slots] product position held by each slot when built, −1 none (ProductOf)
    private readonly int[] _slotOccupancy;          // [index slots] the slot's occupancy then
    private readonly Comparison<Scored> _byScore;   // CompareScored, one delegate for every sort

    /// <summary>
    /// A pipeline over <paramref name="products"/> whose vectors are in <paramref name="index"/> (built with
    /// <see cref="CatalogIndex"/>, so its category facets are <see cref="CategoryVocabulary"/> ids of these products).
    /// <paramref name="embedder"/> embeds query texts (null: only profile and popularity requests are served).
    /// </summary>
    public RankingPipeline(IReadOnlyList<CatalogProduct> products, ProductIndex index, ITextEmbedder? embedder,
                           ScoringHeads? heads = null, RankingOptions? options = null, string catalogVersion = "unversioned")
        : this(products, index, embedder, heads, options, catalogVersion, categories: null)
    {
    }

    private RankingPipeline(IReadOnlyList<CatalogProduct> products, ProductIndex index, ITextEmbedder? embedder,
                            ScoringHeads? heads, RankingOptions? options, string catalogVersion, CategoryVocabulary? categories)
    {
        ArgumentNullException.ThrowIfNull(products);
        ArgumentNullException.ThrowIfNull(index);
        if (embedder is not null && embedder.Dimensions != index.Dimensions)
            throw new ArgumentException($"the encoder makes {embedder.Dimensions}-dim vectors, the index holds {index.Dimensions}", nameof(embedder));
        _products = [.. products];
        _byId = new Dictionary<string, int>(_products.Length, StringComparer.Ordinal);
        for (int i = 0; i < _products.Length; i++)
            if (!_byId.TryAdd(_products[i].Id, i)) throw new ArgumentException($"duplicate product id \"{_products[i].Id}\"", nameof(products));
        _index = index;
        _embedder = embedder;
        Heads = heads ?? ScoringHeads.Default;
        Options = options ?? new RankingOptions();
        if (Options.Blend.Validate() is { } bad) throw new ArgumentException(bad, nameof(options));
        CatalogVersion = catalogVersion;
        Categories = categories ?? new CategoryVocabulary(_products);
        _category = _products.Select(p => Categories.IdOf(p.Category)).ToArray();
        _facts = Array.ConvertAll(_products, ProductFacts.Of);
        _medianLogPrice = new float[Categories.Count];
        for (int c = 0; c < Categories.Count; c++)
        {
            var prices = _products.Where((_, i) => _category[i] == c).Select(p => MathF.Log(1 + p.Price)).Order().ToArray();
            _medianLogPrice[c] = prices.Length == 0 ? 0 : prices[prices.Length / 2];
        }
        _byPopularity = Enumerable.Range(0, _products.Length)
            .OrderByDescending(i => _products[i].Popularity).ThenBy(i => _products[i].Id, StringComparer.Ordinal).ToArray();
        (_productOfSlot, _slotOccupancy) = index.SlotMap(_products.Select(p => p.Id).ToArray());
        _byScore = CompareScored;
    }

    /// <summary>
    /// Embeds <paramref name="products"/> (<see cref="CatalogEmbedder"/>), builds their index on <paramref name="scanner"/>
    /// and returns a pipeline that owns that index (disposing the pipeline disposes it). For a catalog file, prefer
    /// <see cref="CatalogIndex.LoadOrBuild"/> (cached beside the file) and the constructor.
    /// </summary>
    public static RankingPipeline FromCatalog(IReadOnlyList<CatalogProduct> products, ITextEmbedder embedder, IVectorScanner scanner,
                                              CatalogEmbeddingMode mode, string catalogVersion, ScoringHeads? heads = null,
                                              RankingOptions? options = null, IProgress<WorkProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        float[] vectors = CatalogEmbedder.Embed(products, embedder, mode, progress);
        var index = CatalogIndex.Build(products, vectors, embedder.Dimensions, new CategoryVocabulary(products), scanner);
        try
        {
            return new RankingPipeline(products, index, embedder, heads, options, catalogVersion) { _ownsIndex = true };
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    private bool _ownsIndex;

    /// <summary>
    /// A catalog change (an admin upsert): embeds <paramref name="upserts"/> (new or changed products) with this pipeline's
    /// encoder in <paramref name="mode"/>, writes them into the shared index and removes <paramref name="removals"/> from
    /// it, and returns a pipeline over the changed catalog; category ids of existing products are kept (new categories
    /// get new ids). This pipeline keeps answering from its own product list meanwhile (products it does not know are
    /// skipped); the new one takes over the index's ownership. Not for concurrent use with another change.
    /// </summary>
    /// <exception cref="ArgumentException">A product fails the catalog rules (empty id or title, bad price…), or an upsert
    /// without an encoder; nothing has changed then.</exception>
    public RankingPipeline WithChanges(IReadOnlyList<CatalogProduct> upserts, IReadOnlyList<string> removals,
                                       CatalogEmbeddingMode mode, string catalogVersion)
    {
        ArgumentNullException.ThrowIfNull(upserts);
        ArgumentNullException.ThrowIfNull(removals);
        if (upserts.Count > 0 && _embedder is null) throw new ArgumentException("catalog upserts need a text encoder", nameof(upserts));
        foreach (var p in upserts)
            if (string.IsNullOrWhiteSpace(p.Id) || string.IsNullOrWhiteSpace(p.Title) || string.IsNullOrWhiteSpace(p.Category)
                || !float.IsFinite(p.Price) || p.Price < 0 || p.Stock < 0)
                throw new ArgumentException($"product \"{p.Id}\": needs an id, a title, a category, a finite price ≥ 0 and stock ≥ 0", nameof(upserts));
        if (upserts.Select(p => p.Id).Distinct(StringComparer.Ordinal).Count() != upserts.Count)
            throw new ArgumentException("a product id appears twice in one change", nameof(upserts));

        var removed = new HashSet<string>(removals, StringComparer.Ordinal);
        var changed = upserts.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var next = new List<CatalogProduct>(_products.Length + upserts.Count);
        foreach (var p in _products)
            if (!removed.Contains(p.Id)) next.Add(changed.Remove(p.Id, out var replacement) ? replacement : p);
        next.AddRange(upserts.Where(p => changed.ContainsKey(p.Id) && !removed.Contains(p.Id)));
        var categories = new CategoryVocabulary(next, Categories.Names);

        var fresh = upserts.Where(p => !removed.Contains(p.Id)).ToArray();
        if (fresh.Length > 0)
        {
            float[] vectors = CatalogEmbedder.Embed(fresh, _embedder!, mode);
            _index.UpsertBatch(fresh.Select(p => p.Id).ToArray(), vectors, fresh.Select(p => CatalogIndex.FacetsOf(p, categories)).ToArray());
        }
        foreach (string id in removed) _index.Remove(id);

        var pipeline = new RankingPipeline(next, _index, _embedder, Heads, Options, catalogVersion, categories) { _ownsIndex = _ownsIndex };
        _ownsIndex = false;
        return pipeline;
    }

    /// <summary>Disposes the index when this pipeline built it (<see cref="FromCatalog"/>); otherwise nothing.</summary>
    public void Dispose()
    {
        if (_ownsIndex) _index.Dispose();
    }

    /// <summary>The product index searched (shared with the caller unless built by <see cref="FromCatalog"/>).</summary>
    public ProductIndex Index => _index;

    /// <summary>The scoring heads in use.</summary>
    public ScoringHeads Heads { get; }

    /// <summary>Service-level options (default blend, merchandising, candidate counts).</summary>
    public RankingOptions Options { get; }

    /// <summary>The catalog's version (e.g. <see cref="LoadedCatalog.Version"/>).</summary>
    public string CatalogVersion { get; }

    /// <summary>The catalog's categories and the words that name them.</summary>
    public CategoryVocabulary Categories { get; }

    /// <summary>The products ranked, in catalog order.</summary>
    public IReadOnlyList<CatalogProduct> Products => _products;

    /// <summary>The vector dimensions a profile vector must have.</summary>
    public int Dimensions => _index.Dimensions;

    /// <summary>A product by id, or null.</summary>
    public CatalogProduct? Find(string productId) => _byId.TryGetValue(productId, out int i) ? _products[i] : null;

    /// <summary>
    /// Everything that produced an answer: heads version, encoder model version, catalog version and index version,
    /// e.g. "heads-default-1+all-MiniLM-L6-v2/q8_0+catalog-3f2a…+index-7".
    /// </summary>
    public string ModelVersion => CurrentModelVersion();

    private sealed record VersionText(long Index, string Text);
    private VersionText? _modelVersion; // the last ModelVersion built, by the index version it names

    /// <summary><see cref="ModelVersion"/>, built once per index version (every Recommend names it).</summary>
    private string CurrentModelVersion()
    {
        long index = _index.Version;
        var cached = Volatile.Read(ref _modelVersion);
        if (cached is not null && cached.Index == index) return cached.Text;
        cached = new VersionText(index, $"{Heads.Version}+{_embedder?.ModelVersion ?? "no-encoder"}+catalog-{CatalogVersion}+index-{index}");
        Volatile.Write(ref _modelVersion, cached);
        return cached.Text;
    }

    /// <summary>Checks a request without running it; false with a one-line reason when <see cref="Rank"/> would reject it.</summary>
    public bool TryValidate(RankRequest request, out string? error)
    {
        error = Check(request);
        return error is null;
    }

    private string? Check(RankRequest? r)
    {
        if (r is null) return "request is null";
        if (r.K is < 1 or > MaxK) return $"k = {r.K}: must be between 1 and {MaxK}";
        if (r.Filter is null) return "filter is null (use ProductFilter.None)";
        if (float.IsNaN(r.Filter.MinPrice) || float.IsNaN(r.Filter.MaxPrice)) return "price bounds must not be NaN";
        if (r.ProfileVector is { } v)
        {
            if (v.Length != _index.Dimensions) return $"profile vector has {v.Length} dimensions, the index {_index.Dimensions}";
            foreach (float x in v) if (!float.IsFinite(x)) return "profile vector holds a NaN or infinite value";
        }
        if (r.QueryText is { Length: > MaxQueryChars }) return $"query text is {r.QueryText.Length} characters (at most {MaxQueryChars})";
        if (!string.IsNullOrWhiteSpace(r.QueryText) && _embedder is null) return "query text given but no text encoder is loaded";
        if (r.Blend?.Validate() is { } bad) return bad;
        foreach (var pin in (r.Merchandising ?? Options.Merchandising).Pins)
            if (pin.Position < 1) return $"pin of {pin.ProductId} at position {pin.Position}: positions start at 1";
        return null;
    }

    /// <summary>Longest query text accepted (a search box, not a document).</summary>
    public const int MaxQueryChars = 1000;

    /// <summary>Ranks one request.</summary>
    /// <exception cref="ArgumentException">An invalid request (see <see cref="TryValidate"/>).</exception>
    public RankResult Rank(RankRequest request) => RankBatch([request])[0];

    /// <summary>
    /// Ranks many requests with one encoder call for their texts and one <see cref="ProductIndex.SearchBatch"/> scan
    /// for all their vectors (how a server batches concurrent recommendations).
    /// </summary>
    /// <exception cref="ArgumentException">Any request is invalid (the message names its position); nothing is ranked.</exception>
    public RankResult[] RankBatch(IReadOnlyList<RankRequest> requests)
    {
        ArgumentNullException.ThrowIfNull(requests);
        for (int i = 0; i < requests.Count; i++)
            if (Check(requests[i]) is { } error)
                throw new ArgumentException(requests.Count == 1 ? error : $"request {i}: {error}", nameof(requests));

        string version = CurrentModelVersion();
        var plans = new Plan[requests.Count];
        for (int i = 0; i < plans.Length; i++) plans[i] = PlanOf(requests[i]);
        EmbedQueries(plans);

        // One scan for every request that has a vector. Scratch from the shared pools: a warmed batch allocates its
        // plans and answers, not its buffers.
        int searched = 0, k = 1;
        foreach (var plan in plans)
            if (plan.Vector is not null && !plan.Empty) { searched++; k = Math.Max(k, plan.CandidateCount); }
        var results = new RankResult[plans.Length];
        if (searched == 0)
        {
            for (int i = 0; i < plans.Length; i++) results[i] = new RankResult(Finish(plans[i], []), version);
            return results;
        }
        int dims = _index.Dimensions;
        k = Math.Min(k, Math.Max(1, _products.Length));
        float[] queries = ArrayPool<float>.Shared.Rent(searched * dims); // [searched, dims] f32 unit vectors
        ProductFilter[] filters = ArrayPool<ProductFilter>.Shared.Rent(searched);
        SlotHit[] hits = ArrayPool<SlotHit>.Shared.Rent(searched * k);    // [searched, k] best first
        int[] counts = ArrayPool<int>.Shared.Rent(searched);
        try
        {
            for (int i = 0, b = 0; i < plans.Length; i++)
            {
                var plan = plans[i];
                if (plan.Vector is not { } v || plan.Empty) continue;
                var into = queries.AsSpan(b * dims, dims);
                for (int d = 0; d < dims; d++) into[d] = v[d] * plan.VectorScale;
                filters[b++] = plan.Filter;
            }
            _index.SearchSlots(queries.AsSpan(0, searched * dims), k, filters.AsSpan(0, searched), hits, counts);
            for (int i = 0, b = 0; i < plans.Length; i++)
            {
                var plan = plans[i];
                bool scanned = plan.Vector is not null && !plan.Empty;
                results[i] = new RankResult(Finish(plan, scanned ? hits.AsSpan(b * k, counts[b]) : []), version);
                if (scanned) b++;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(queries);
            ArrayPool<ProductFilter>.Shared.Return(filters, clearArray: true);
            ArrayPool<SlotHit>.Shared.Return(hits, clearArray: true); // drop the id references
            ArrayPool<int>.Shared.Return(counts);
        }
        return results;
    }
}
