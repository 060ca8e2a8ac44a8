using System.Buffers;
using System.Globalization;

namespace Engine.Runtime.Ranking;

public sealed partial class RankingPipeline
{
    private enum Source { Popular, Profile, Query, QueryAndProfile }

    /// <summary>What one request resolves to before the scan.</summary>
    private sealed class Plan
    {
        public required RankRequest Request;
        public required ProductFilter Filter;        // stock, price and categories, all intersected
        public required HashSet<int>? Categories;    // the category_match set (null: request named none)
        public required bool Empty;                  // filters that no product can pass
        public required string QueryText;            // query text without its price phrases ("" when none)
        public required BlendWeights Blend;
        public required Merchandising Merchandising;
        public required int CandidateCount;
        public float[]? Vector;                      // [dims] query vector (unit after × VectorScale), or null (popularity path)
        public float VectorScale = 1;                // 1 / ‖Vector‖ for a profile (not copied: the scan's buffer gets it scaled)
        public Source Source;
    }

    private Plan PlanOf(RankRequest r)
    {
        var price = PriceQueryParser.Parse(r.QueryText);
        float min = MathF.Max(r.Filter.MinPrice, price.MinPrice);
        float max = MathF.Min(r.Filter.MaxPrice, price.MaxPrice);

        // Categories: the explicit filter ∩ the page category ∩ category words of the query; null = no constraint.
        HashSet<int>? categories = r.Filter.Categories is { } explicitIds ? [.. explicitIds] : null;
        if (r.Category is { Length: > 0 } page) Intersect(ref categories, [Categories.IdOf(page)]);
        if (Options.CategoryWordsFilter && price.Text.Length > 0 && Categories.Match(price.Text) is { Count: > 0 } named)
            Intersect(ref categories, named);
        categories?.Remove(-1);

        bool empty = min > max || categories is { Count: 0 };
        bool inStockOnly = r.Filter.InStockOnly || !r.AllowOutOfStock;
        // The usual request (no categories, no price bounds) shares one filter object: no allocation, one bitmap per batch.
        var filter = categories is null && min == 0 && max == float.PositiveInfinity
            ? (inStockOnly ? InStockFilter : ProductFilter.None)
            : new ProductFilter
            {
                InStockOnly = inStockOnly,
                Categories = categories is null ? null : [.. categories.Order()],
                MinPrice = min,
                MaxPrice = max,
            };
        int candidates = Math.Min(Math.Max(_products.Length, 1), Math.Max(r.K * Options.CandidatesPerItem, Options.MinCandidates));
        var plan = new Plan
        {
            Request = r, Filter = filter, Categories = categories, Empty = empty, QueryText = price.Text,
            Blend = r.Blend ?? Options.Blend, Merchandising = r.Merchandising ?? Options.Merchandising,
            CandidateCount = Math.Max(candidates, r.K),
        };
        if (r.ProfileVector is { } profile && InverseNorm(profile) is > 0 and var scale)
        {
            plan.Vector = profile; // read only: scaled where it is copied (CatalogEmbedder.Normalize's arithmetic, not a clone)
            plan.VectorScale = scale;
            plan.Source = Source.Profile;
        }
        return plan;
    }

    private static readonly ProductFilter InStockFilter = new() { InStockOnly = true };

    private static void Intersect(ref HashSet<int>? set, IEnumerable<int> with)
    {
        if (set is null) set = [.. with];
        else set.IntersectWith(with);
    }

    /// <summary>
    /// What <see cref="CatalogEmbedder.Normalize"/> multiplies <paramref name="v"/> by: 1/‖v‖, 1 when ‖v‖² overflows (left as
    /// is), 0 for a zero vector (no vector: the popularity path).
    /// </summary>
    private static float InverseNorm(float[] v)
    {
        float norm = 0;
        foreach (float x in v) norm += x * x;
        if (norm <= 0) return 0;
        return float.IsFinite(norm) ? 1 / MathF.Sqrt(norm) : 1;
    }

    /// <summary>Embeds every plan's query text in one encoder call and blends it with the profile vector.</summary>
    private void EmbedQueries(Plan[] plans)
    {
        int texts = 0;
        foreach (var p in plans) if (p.QueryText.Length > 0 && !p.Empty) texts++;
        if (texts == 0 || _embedder is null) return;
        var withText = new Plan[texts];
        texts = 0;
        foreach (var p in plans) if (p.QueryText.Length > 0 && !p.Empty) withText[texts++] = p;
        int dims = _embedder.Dimensions;
        var vectors = new float[withText.Length * dims]; // [texts, dims] f32
        _embedder.Embed(withText.Select(p => p.QueryText).ToArray(), vectors);
        for (int i = 0; i < withText.Length; i++)
        {
            var plan = withText[i];
            var q = vectors.AsSpan(i * dims, dims).ToArray();
            if (plan.Vector is { } profile)
            {
                float mix = plan.Blend.ProfileMix, scale = plan.VectorScale;
                for (int d = 0; d < dims; d++) q[d] = (1 - mix) * q[d] + mix * (profile[d] * scale);
                CatalogEmbedder.Normalize(q);
                plan.Source = Source.QueryAndProfile;
            }
            else plan.Source = Source.Query;
            plan.Vector = q;
            plan.VectorScale = 1;
        }
    }

    private bool Passes(int product, ProductFilter filter)
    {
        ref readonly var p = ref _facts[product];
        if (filter.InStockOnly && !p.InStock) return false;
        if (p.Price < filter.MinPrice || p.Price > filter.MaxPrice) return false;
        return filter.Categories is not { } cats || cats.Contains(_category[product]);
    }

    private readonly record struct Scored(int Product, float Score, float Similarity, float PClick, float PPurchase, float PReturn, float Boost);

    private Scored Score(int product, float similarity, Plan plan, Span<float> features)
    {
        ref readonly var p = ref _facts[product];
        int category = _category[product];
        RankingFeatures.Compute(features, similarity, p, category >= 0 ? _medianLogPrice[category] : 0, plan.Categories?.Contains(category) == true);
        float click = Heads.Click.Predict(features);
        float cart = Heads.AddToCart.Predict(features);
        float buy = Heads.Purchase.Predict(features);
        float ret = Heads.Return.Predict(features);
        float purchase = click * cart * buy;
        var m = plan.Merchandising;
        float boost = m.Boosts.Count == 0 && m.CategoryBoosts.Count == 0 ? 0 // the usual request: no product object read
            : m.Boosts.GetValueOrDefault(_products[product].Id) + m.CategoryBoosts.GetValueOrDefault(_products[product].Category);
        var w = plan.Blend;
        float score = w.Similarity * similarity + w.Click * click + w.Purchase * purchase * (1 - ret)
                    + w.Margin * p.Margin - w.ReturnRisk * ret - w.BackorderRisk * p.BackorderRisk + w.Boost * boost;
        return new Scored(product, score, similarity, click, purchase, ret, boost);
    }

    /// <summary>
    /// Scores the candidates (<paramref name="hits"/> of the scan, or the most popular products when the plan has no
    /// vector), applies the rules and places the pins: the final top K.
    /// </summary>
    private List<RankedItem> Finish(Plan plan, ReadOnlySpan<SlotHit> hits)
    {
        var items = new List<RankedItem>();
        if (plan.Empty) return items;
        Span<float> features = stackalloc float[RankingFeatures.Count];

        // Candidates are distinct products: index slots hold distinct ids, the popularity list distinct positions.
        Scored[] scored = ArrayPool<Scored>.Shared.Rent(Math.Max(1, plan.Vector is null ? plan.CandidateCount : hits.Length));
        try
        {
            int n = 0;
            if (plan.Vector is not null)
            {
                foreach (var hit in hits)
                    if (ProductOf(hit) is var p and >= 0 && Passes(p, plan.Filter))
                        scored[n++] = Score(p, hit.Score, plan, features);
            }
            else
            {
                foreach (int p in _byPopularity)
                {
                    if (n >= plan.CandidateCount) break;
                    if (Passes(p, plan.Filter)) scored[n++] = Score(p, 0, plan, features);
                }
            }
            var ranked = scored.AsSpan(0, n);
            ranked.Sort(_byScore);
            return Place(plan, ranked, features, items);
        }
        finally
        {
            ArrayPool<Scored>.Shared.Return(scored);
        }
    }

    /// <summary>Best first; equal scores by product id (a stable order whatever the scan's order).</summary>
    private int CompareScored(Scored a, Scored b) =>
        b.Score != a.Score ? b.Score.CompareTo(a.Score) : string.CompareOrdinal(_products[a.Product].Id, _products[b.Product].Id);

    /// <summary>
    /// The pipeline position of a hit's product: by the slot map built with this pipeline while the slot still holds the
    /// product it held then (same occupancy: no id hashing or string reads on the hot path), else by id (the index changed
    /// since: a catalog update); −1 when this pipeline does not know the product.
    /// </summary>
    private int ProductOf(SlotHit hit)
    {
        var map = _productOfSlot;
        if ((uint)hit.Slot < (uint)map.Length && _slotOccupancy[hit.Slot] == hit.Occupancy && map[hit.Slot] is var p and >= 0)
            return p;
        return _byId.TryGetValue(hit.ProductId, out p) ? p : -1;
    }

    /// <summary>The top k of <paramref name="scored"/> (sorted best first) with the request's pins placed.</summary>
    private List<RankedItem> Place(Plan plan, Span<Scored> scored, Span<float> features, List<RankedItem> items)
    {
        int k = plan.Request.K;
        if (plan.Merchandising.Pins.Count == 0)
        {
            // No pins (the usual request): the top k in score order, without the pin bookkeeping's allocations.
            int n = Math.Min(k, scored.Length);
            items.Capacity = n;
            for (int i = 0; i < n; i++) items.Add(Item(scored[i], plan, null));
            return items;
        }

        // Pins: each valid pinned product at its position; the rest fill the other slots in score order.
        var pinned = new SortedDictionary<int, Scored>();
        var pinnedProducts = new HashSet<int>();
        foreach (var pin in plan.Merchandising.Pins)
        {
            if (pin.Position > k || !_byId.TryGetValue(pin.ProductId, out int p) || !Passes(p, plan.Filter) || pinnedProducts.Contains(p)) continue;
            int position = pin.Position;
            while (pinned.ContainsKey(position)) position++;  // two pins for one slot: the later one moves down
            if (position > k) continue;
            int existing = -1;
            for (int i = 0; i < scored.Length && existing < 0; i++) if (scored[i].Product == p) existing = i;
            // A pin that was no candidate has no similarity at hand (the index keeps vectors, not this class): 0.
            pinned[position] = existing >= 0 ? scored[existing] : Score(p, 0, plan, features);
            pinnedProducts.Add(p);
        }
        int next = 0; // the next unpinned candidate in score order
        for (int position = 1; position <= k; position++)
        {
            while (next < scored.Length && pinnedProducts.Contains(scored[next].Product)) next++;
            if (pinned.TryGetValue(position, out var pin))
                items.Add(Item(pin, plan, position));
            else if (next < scored.Length)
                items.Add(Item(scored[next++], plan, null));
            else if (pinned.Keys.Any(x => x > position))
            {
                // Fewer candidates than slots: later pins close the gap rather than leave holes.
                int later = pinned.Keys.First(x => x > position);
                items.Add(Item(pinned[later], plan, position));
                pinned.Remove(later);
            }
            else break;
        }
        return items;
    }

    private RankedItem Item(Scored s, Plan plan, int? pinnedAt)
    {
        var p = _products[s.Product];
        // Everything but the query text and the pin position is one of a few flags: those reasons are built once each.
        int flags = (s.Similarity >= StrongMatch ? 1 : 0)
                    | (s.Boost > 0 ? 2 : s.Boost < 0 ? 4 : 0)
                    | (s.PPurchase >= LikelyPurchase ? 8 : 0)
                    | (p.Margin >= HighMargin ? 16 : 0)
                    | (plan.Source != Source.Popular && p.Popularity >= Popular ? 32 : 0)
                    | (s.PReturn <= RarelyReturned ? 64 : s.PReturn >= OftenReturned ? 128 : 0)
                    | (p.BackorderRisk >= BackorderWarning && p.InStock ? 256 : 0)
                    | (!p.InStock ? 512 : 0);
        string reason;
        if (pinnedAt is null && plan.Source is Source.Profile or Source.Popular)
        {
            int slot = (plan.Source == Source.Profile ? ReasonFlags : 0) + flags;
            reason = _reasons[slot] ??= Reason(flags, plan, null);
        }
        else reason = Reason(flags, plan, pinnedAt);
        return new RankedItem(p.Id, s.Score, reason) { Similarity = s.Similarity };
    }

    private const int ReasonFlags = 1024;                       // combinations of Item's flags
    private readonly string?[] _reasons = new string?[2 * ReasonFlags]; // [source (popular, profile), flags] built reasons

    /// <summary>The reason text for Item's <paramref name="flags"/> (README "Reasons").</summary>
    private static string Reason(int flags, Plan plan, int? pinnedAt)
    {
        var reasons = new List<string>(4);
        bool strong = (flags & 1) != 0;
        switch (plan.Source)
        {
            case Source.Query:
                reasons.Add(strong ? $"matches \"{plan.QueryText}\"" : $"related to \"{plan.QueryText}\"");
                break;
            case Source.QueryAndProfile:
                reasons.Add($"matches \"{plan.QueryText}\" and your recent views");
                break;
            case Source.Profile:
                reasons.Add(strong ? "similar to your recent views" : "related to your recent views");
                break;
            default:
                reasons.Add("popular now");
                break;
        }
        if (pinnedAt is { } at) reasons.Add($"pinned at #{at.ToString(CultureInfo.InvariantCulture)}");
        if ((flags & 2) != 0) reasons.Add("promoted");
        else if ((flags & 4) != 0) reasons.Add("demoted");
        if ((flags & 8) != 0) reasons.Add("often bought");
        if ((flags & 16) != 0) reasons.Add("high margin");
        if ((flags & 32) != 0) reasons.Add("popular");
        if ((flags & 64) != 0) reasons.Add("rarely returned");
        else if ((flags & 128) != 0) reasons.Add("often returned (ranked lower)");
        if ((flags & 256) != 0) reasons.Add("may ship late (ranked lower)");
        if ((flags & 512) != 0) reasons.Add("out of stock");
        return string.Join("; ", reasons);
    }

    // Reason thresholds (README "Reasons"): descriptive cut-offs, not tuned to data.
    private const float StrongMatch = 0.5f;        // cosine at which MiniLM texts are clearly about the same thing
    private const float LikelyPurchase = 0.1f;     // p(purchase) per exposure: storefront conversion is a few percent, so 10% stands out
    private const float HighMargin = 0.6f;
    private const float Popular = 0.4f;
    private const float RarelyReturned = 0.05f;
    private const float OftenReturned = 0.25f;
    private const float BackorderWarning = 0.3f;
}
