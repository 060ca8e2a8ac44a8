// TEMPORARY (h/rank only, never landed): the shapes of CONTRACTS.md §3 and §4 so the ranking pipeline compiles
// before helpers B (ITextEmbedder) and C (ProductIndex) land. Deleted when their code is merged.
using Engine.Core.Backend;

namespace Engine.Core.Backend
{
    public interface IVectorScanner { }
}

// Stub lives in Ranking: a namespace Engine.Runtime.Encoding hides System.Text.Encoding from Tokenization/*.cs (B's fix).
namespace Engine.Runtime.Ranking
{
    public interface ITextEmbedder
    {
        int Dimensions { get; }
        string ModelVersion { get; }
        void Embed(IReadOnlyList<string> texts, Span<float> output);
    }
}

namespace Engine.Runtime.Ranking
{
    public readonly record struct ProductFacets(int Category, float Price, bool InStock);

    public sealed record ProductFilter
    {
        public bool InStockOnly { get; init; }
        public IReadOnlyList<int>? Categories { get; init; }
        public float MinPrice { get; init; }
        public float MaxPrice { get; init; } = float.PositiveInfinity;
        public static ProductFilter None { get; } = new();
    }

    public readonly record struct SearchHit(string ProductId, float Score);

    public sealed class ProductIndex : IDisposable
    {
        private readonly Dictionary<string, (float[] V, ProductFacets F)> _items = new();
        public ProductIndex(int dimensions, IVectorScanner scanner) { Dimensions = dimensions; _ = scanner; }
        public int Dimensions { get; }
        public int Count => _items.Count;
        public long Version { get; private set; }
        public void Upsert(string productId, ReadOnlySpan<float> vector, ProductFacets facets) { _items[productId] = (vector.ToArray(), facets); Version++; }
        public void UpsertBatch(IReadOnlyList<string> ids, ReadOnlySpan<float> vectors, IReadOnlyList<ProductFacets> facets)
        {
            for (int i = 0; i < ids.Count; i++) _items[ids[i]] = (vectors.Slice(i * Dimensions, Dimensions).ToArray(), facets[i]);
            Version++;
        }
        public bool Remove(string productId) { bool r = _items.Remove(productId); if (r) Version++; return r; }
        public bool TryGetFacets(string productId, out ProductFacets facets)
        {
            if (_items.TryGetValue(productId, out var e)) { facets = e.F; return true; }
            facets = default; return false;
        }
        public IReadOnlyList<SearchHit> Search(ReadOnlySpan<float> query, int k, ProductFilter filter)
        {
            var hits = new List<SearchHit>();
            foreach (var (id, (v, f)) in _items)
            {
                if (filter.InStockOnly && !f.InStock) continue;
                if (filter.Categories is { } c && !c.Contains(f.Category)) continue;
                if (f.Price < filter.MinPrice || f.Price > filter.MaxPrice) continue;
                float s = 0;
                for (int i = 0; i < v.Length; i++) s += v[i] * query[i];
                hits.Add(new SearchHit(id, s));
            }
            return hits.OrderByDescending(h => h.Score).ThenBy(h => h.ProductId, StringComparer.Ordinal).Take(k).ToList();
        }
        public IReadOnlyList<SearchHit>[] SearchBatch(ReadOnlySpan<float> queries, int k, IReadOnlyList<ProductFilter> filters)
        {
            var r = new IReadOnlyList<SearchHit>[filters.Count];
            for (int i = 0; i < r.Length; i++) r[i] = Search(queries.Slice(i * Dimensions, Dimensions), k, filters[i]);
            return r;
        }
        public void Save(string path)
        {
            using var w = new BinaryWriter(File.Create(path));
            w.Write(Dimensions); w.Write(_items.Count);
            foreach (var (id, (v, f)) in _items)
            {
                w.Write(id); foreach (float x in v) w.Write(x);
                w.Write(f.Category); w.Write(f.Price); w.Write(f.InStock);
            }
        }
        public static ProductIndex Load(string path, IVectorScanner scanner)
        {
            using var r = new BinaryReader(File.OpenRead(path));
            var index = new ProductIndex(r.ReadInt32(), scanner);
            int n = r.ReadInt32();
            for (int i = 0; i < n; i++)
            {
                string id = r.ReadString();
                var v = new float[index.Dimensions];
                for (int j = 0; j < v.Length; j++) v[j] = r.ReadSingle();
                index.Upsert(id, v, new ProductFacets(r.ReadInt32(), r.ReadSingle(), r.ReadBoolean()));
            }
            return index;
        }
        public void Dispose() { }
    }
}
