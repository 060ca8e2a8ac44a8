using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Cli.Commands;

/// <summary>
/// A stand-in ranking until issue 4's lands: a seeded random demo catalog of N products with 384-dim
/// int8 vectors, 20 categories and stock, and an exact int8 dot-product scan per request (no index,
/// no scoring heads, no business rules). The shopper's vector is derived from a hash of the customer
/// id and query, so answers are repeatable. Honest about what it is: ModelVersion says "demo".
/// <c>engine serve</c> puts a <see cref="RecommendBatcher"/> in front, so concurrent requests share one scan.
/// </summary>
internal sealed class DemoCatalogRecommender : IRecommendHandler, IBatchRecommendHandler
{
    public const int Dim = 384;           // all-MiniLM-L6-v2's width (DESIGN.md), so the scan costs what the real one will
    private const int Categories = 20;
    private readonly sbyte[] _vectors;    // [n, Dim] int8
    private readonly byte[] _category;    // [n]
    private readonly int[] _stock;        // [n]
    private readonly int _count;
    private long _recommendations;

    public DemoCatalogRecommender(int products, int seed = 42)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(products);
        _count = products;
        var random = new Random(seed);
        _vectors = new sbyte[products * Dim];
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_vectors.AsSpan()));
        _category = new byte[products];
        _stock = new int[products];
        for (int i = 0; i < products; i++)
        {
            _category[i] = (byte)random.Next(Categories);
            _stock[i] = random.Next(10) == 0 ? 0 : random.Next(1, 100); // 10% out of stock
        }
    }

    public int Count => _count;

    public ValueTask<RecommendResult> RecommendAsync(RecommendRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(RecommendBatch([request])[0].Result!);

    /// <summary>
    /// One pass over the catalog for the whole batch: each product's vector is loaded once and scored
    /// against every query of the batch while it sits in L1, so b requests read the 384-byte rows once,
    /// not b times.
    /// </summary>
    public BatchAnswer<RecommendResult>[] RecommendBatch(IReadOnlyList<RecommendRequest> requests)
    {
        int b = requests.Count;
        var queries = new short[b * Dim];                     // [b, Dim] int16 shopper vectors
        var categories = new int[b];
        var heaps = new PriorityQueue<int, int>[b];           // min-heaps of (product, score)
        var ks = new int[b];
        for (int q = 0; q < b; q++)
        {
            RecommendRequest request = requests[q];
            ks[q] = Math.Min(request.K, _count);
            // Shopper vector: repeatable per (customer, query).
            var qr = new Random(StableHash(request.CustomerId ?? "") ^ StableHash(request.Query ?? ""));
            for (int i = 0; i < Dim; i++) queries[q * Dim + i] = (short)qr.Next(-128, 128);
            categories[q] = request.Category is { Length: > 4 } c && c.StartsWith("cat-", StringComparison.Ordinal) && int.TryParse(c.AsSpan(4), out int cat) ? cat : -1;
            heaps[q] = new PriorityQueue<int, int>(ks[q] + 1);
        }

        for (int p = 0; p < _count; p++)
        {
            ReadOnlySpan<sbyte> row = _vectors.AsSpan(p * Dim, Dim);
            for (int q = 0; q < b; q++)
            {
                if (categories[q] >= 0 && _category[p] != categories[q]) continue;
                if (requests[q].InStockOnly && _stock[p] == 0) continue;
                int score = Dot(row, queries.AsSpan(q * Dim, Dim));
                var top = heaps[q];
                if (top.Count < ks[q]) top.Enqueue(p, score);
                else if (top.TryPeek(out _, out int worst) && score > worst) top.EnqueueDequeue(p, score);
            }
        }

        var results = new BatchAnswer<RecommendResult>[b];
        const float scale = 1f / (127 * 128 * Dim); // scores into roughly [-1, 1]
        for (int q = 0; q < b; q++)
        {
            var top = heaps[q];
            var items = new RecommendedItem[top.Count];
            for (int i = items.Length - 1; i >= 0; i--)
            {
                top.TryDequeue(out int product, out int score);
                items[i] = new RecommendedItem { ProductId = $"p{product}", Score = score * scale };
            }
            results[q] = new RecommendResult
            {
                RecommendationId = $"demo-{Interlocked.Increment(ref _recommendations)}",
                Items = items,
                ModelVersion = $"demo-catalog-int8-exact/{_count}",
            };
        }
        return results;
    }

    /// <summary>int8 · int16 dot product; AVX2 path widens 16 int8 to int16 and uses pmaddwd (pairs into int32).</summary>
    internal static int Dot(ReadOnlySpan<sbyte> a, ReadOnlySpan<short> b)
    {
        int i = 0, sum = 0;
        if (Avx2.IsSupported)
        {
            var acc = Vector256<int>.Zero;
            for (; i + 16 <= a.Length; i += 16)
            {
                Vector256<short> wa = Avx2.ConvertToVector256Int16(Vector128.Create(a.Slice(i, 16)));
                acc = Avx2.Add(acc, Avx2.MultiplyAddAdjacent(wa, Vector256.Create(b.Slice(i, 16))));
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    private static int StableHash(string s)
    {
        uint h = 2166136261; // FNV-1a
        foreach (char ch in s) h = (h ^ ch) * 16777619;
        return (int)h;
    }
}
