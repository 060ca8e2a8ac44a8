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
        public float[]? Vector;                      // [dims] unit query vector, or null (popularity path)
        public Source Source;
        public IReadOnlyList<SearchHit>? Hits;
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
        var filter = new ProductFilter
        {
            InStockOnly = r.Filter.InStockOnly || !r.AllowOutOfStock,
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
        if (r.ProfileVector is { } profile && Norm(profile) > 0)
        {
            plan.Vector = (float[])profile.Clone();
            CatalogEmbedder.Normalize(plan.Vector);
            plan.Source = Source.Profile;
        }
        return plan;
    }

    private static void Intersect(ref HashSet<int>? set, IEnumerable<int> with)
    {
        if (set is null) set = [.. with];
        else set.IntersectWith(with);
    }

    private static float Norm(float[] v)
    {
        float s = 0;
        foreach (float x in v) s += x * x;
        return MathF.Sqrt(s);
    }

    /// <summary>Embeds every plan's query text in one encoder call and blends it with the profile vector.</summary>
    private void EmbedQueries(Plan[] plans)
    {
        var withText = plans.Where(p => p.QueryText.Length > 0 && !p.Empty).ToArray();
        if (withText.Length == 0 || _embedder is null) return;
        int dims = _embedder.Dimensions;
        var vectors = new float[withText.Length * dims]; // [texts, dims] f32
        _embedder.Embed(withText.Select(p => p.QueryText).ToArray(), vectors);
        for (int i = 0; i < withText.Length; i++)
        {
            var plan = withText[i];
            var q = vectors.AsSpan(i * dims, dims).ToArray();
            if (plan.Vector is { } profile)
            {
                float mix = plan.Blend.ProfileMix;
                for (int d = 0; d < dims; d++) q[d] = (1 - mix) * q[d] + mix * profile[d];
                CatalogEmbedder.Normalize(q);
                plan.Source = Source.QueryAndProfile;
            }
            else plan.Source = Source.Query;
            plan.Vector = q;
        }
    }

    private bool Passes(int product, ProductFilter filter)
    {
        var p = _products[product];
        if (filter.InStockOnly && !p.InStock) return false;
        if (p.Price < filter.MinPrice || p.Price > filter.MaxPrice) return false;
        return filter.Categories is not { } cats || cats.Contains(_category[product]);
    }

    private readonly record struct Scored(int Product, float Score, float Similarity, float PClick, float PPurchase, float PReturn, float Boost);

    private Scored Score(int product, float similarity, Plan plan, Span<float> features)
    {
        var p = _products[product];
        int category = _category[product];
        RankingFeatures.Compute(features, similarity, p, category >= 0 ? _medianLogPrice[category] : 0, plan.Categories?.Contains(category) == true);
        float click = Heads.Click.Predict(features);
        float cart = Heads.AddToCart.Predict(features);
        float buy = Heads.Purchase.Predict(features);
        float ret = Heads.Return.Predict(features);
        float purchase = click * cart * buy;
        float boost = plan.Merchandising.Boosts.GetValueOrDefault(p.Id) + plan.Merchandising.CategoryBoosts.GetValueOrDefault(p.Category);
        var w = plan.Blend;
        float score = w.Similarity * similarity + w.Click * click + w.Purchase * purchase * (1 - ret)
                    + w.Margin * p.Margin - w.ReturnRisk * ret - w.BackorderRisk * p.BackorderRisk + w.Boost * boost;
        return new Scored(product, score, similarity, click, purchase, ret, boost);
    }

    /// <summary>Scores the candidates, applies the rules and places the pins: the final top K.</summary>
    private List<RankedItem> Finish(Plan plan)
    {
        var items = new List<RankedItem>();
        if (plan.Empty) return items;
        Span<float> features = stackalloc float[RankingFeatures.Count];

        var scored = new List<Scored>(plan.CandidateCount);
        var seen = new HashSet<int>();
        if (plan.Hits is { } hits)
        {
            foreach (var hit in hits)
                if (_byId.TryGetValue(hit.ProductId, out int p) && Passes(p, plan.Filter) && seen.Add(p))
                    scored.Add(Score(p, hit.Score, plan, features));
        }
        else if (plan.Vector is null)
        {
            foreach (int p in _byPopularity)
            {
                if (scored.Count >= plan.CandidateCount) break;
                if (Passes(p, plan.Filter) && seen.Add(p)) scored.Add(Score(p, 0, plan, features));
            }
        }
        scored.Sort((a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : string.CompareOrdinal(_products[a.Product].Id, _products[b.Product].Id));

        int k = plan.Request.K;
        if (plan.Merchandising.Pins.Count == 0)
        {
            // No pins (the usual request): the top k in score order, without the pin bookkeeping's allocations.
            int n = Math.Min(k, scored.Count);
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
            int existing = scored.FindIndex(s => s.Product == p);
            // A pin that was no candidate has no similarity at hand (the index keeps vectors, not this class): 0.
            pinned[position] = existing >= 0 ? scored[existing] : Score(p, 0, plan, features);
            pinnedProducts.Add(p);
        }
        var rest = scored.Where(s => !pinnedProducts.Contains(s.Product)).GetEnumerator();
        bool more = rest.MoveNext();
        for (int position = 1; position <= k; position++)
        {
            if (pinned.TryGetValue(position, out var pin))
                items.Add(Item(pin, plan, position));
            else if (more)
            {
                items.Add(Item(rest.Current, plan, null));
                more = rest.MoveNext();
            }
            else if (pinned.Keys.Any(x => x > position))
            {
                // Fewer candidates than slots: later pins close the gap rather than leave holes.
                int next = pinned.Keys.First(x => x > position);
                items.Add(Item(pinned[next], plan, position));
                pinned.Remove(next);
            }
            else break;
        }
        return items;
    }

    private RankedItem Item(Scored s, Plan plan, int? pinnedAt)
    {
        var p = _products[s.Product];
        var reasons = new List<string>(4);
        switch (plan.Source)
        {
            case Source.Query:
                reasons.Add(s.Similarity >= StrongMatch ? $"matches \"{plan.QueryText}\"" : $"related to \"{plan.QueryText}\"");
                break;
            case Source.QueryAndProfile:
                reasons.Add($"matches \"{plan.QueryText}\" and your recent views");
                break;
            case Source.Profile:
                reasons.Add(s.Similarity >= StrongMatch ? "similar to your recent views" : "related to your recent views");
                break;
            default:
                reasons.Add("popular now");
                break;
        }
        if (pinnedAt is { } at) reasons.Add($"pinned at #{at.ToString(CultureInfo.InvariantCulture)}");
        if (s.Boost > 0) reasons.Add("promoted");
        else if (s.Boost < 0) reasons.Add("demoted");
        if (s.PPurchase >= LikelyPurchase) reasons.Add("often bought");
        if (p.Margin >= HighMargin) reasons.Add("high margin");
        if (plan.Source != Source.Popular && p.Popularity >= Popular) reasons.Add("popular");
        if (s.PReturn <= RarelyReturned) reasons.Add("rarely returned");
        else if (s.PReturn >= OftenReturned) reasons.Add("often returned (ranked lower)");
        if (p.BackorderRisk >= BackorderWarning && p.InStock) reasons.Add("may ship late (ranked lower)");
        if (!p.InStock) reasons.Add("out of stock");
        return new RankedItem(p.Id, s.Score, string.Join("; ", reasons)) { Similarity = s.Similarity };
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
