using System.Numerics;
using Engine.Core.Backend;
using Engine.Core.Quant;

namespace Engine.Runtime.Ranking;

/// <summary>
/// The product-vector index: one int8 vector per product (<see cref="Int8Vector"/>: one f32 scale per vector,
/// scale = max|x| / 127) in an <see cref="IVectorStore"/> of the given <see cref="IVectorScanner"/> (SIMD CPU, or
/// a GPU), a second int8 layer per product for rescoring the scan's candidates (ProductIndex.Rescore.cs), facet arrays
/// for filtering, and id ↔ slot maps. Upsert and remove never rebuild: a product owns a slot,
/// a removed product's slot goes on a free list and is reused, and only that one row is written to the scanner.
/// Search builds a bitmap of the slots that are live and pass the filter and scans under it (exact filtering), keeping
/// <c>k · RescoreFactor</c> candidates, then rescores them with the residual layer and returns the best k.
/// <para>
/// Threading: a reader-writer lock. Searches (and <see cref="Save"/>) take it shared and run concurrently with each
/// other; <see cref="Upsert"/>, <see cref="UpsertBatch"/> and <see cref="Remove"/> take it exclusively, so a write
/// waits for the scans in flight (a 1M × 384 scan is tens of milliseconds) and a search sees each write whole.
/// </para>
/// Bad input (wrong dimension, NaN or infinite values, empty id, negative or NaN price, k &lt; 1) throws
/// <see cref="ArgumentException"/> before anything changes.
/// </summary>
public sealed partial class ProductIndex : IDisposable
{
    /// <summary>Slots allocated when the first product arrives; the store then doubles.</summary>
    private const int InitialCapacity = 1024;

    private readonly IVectorStore _store;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, int> _slotOf = new(StringComparer.Ordinal);
    private readonly Stack<int> _free = new();
    private string?[] _ids = [];     // [capacity] product id of a slot, null when free
    private int[] _occupancy = [];   // [capacity] bumped when a slot's product is removed: (slot, occupancy) names one product
    private int[] _category = [];    // [capacity]
    private float[] _price = [];     // [capacity]
    private ulong[] _live = [];      // [capacity/64] bitmap: slot holds a product
    private ulong[] _inStock = [];   // [capacity/64] bitmap
    private int _highWater;          // slots [0, _highWater) have been used
    private long _version;
    private bool _disposed;

    /// <summary>An empty index of <paramref name="dimensions"/>-value vectors scanned by <paramref name="scanner"/>.</summary>
    public ProductIndex(int dimensions, IVectorScanner scanner)
        : this(dimensions, scanner, 0) { }

    private ProductIndex(int dimensions, IVectorScanner scanner, int capacity)
    {
        ArgumentNullException.ThrowIfNull(scanner);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        Dimensions = dimensions;
        _store = scanner.CreateStore(dimensions, capacity);
        Grow(capacity);
    }

    /// <summary>Values per vector.</summary>
    public int Dimensions { get; }

    /// <summary>Products in the index.</summary>
    public int Count
    {
        get { _lock.EnterReadLock(); try { return _slotOf.Count; } finally { _lock.ExitReadLock(); } }
    }

    /// <summary>Bumps by one on every successful <see cref="Upsert"/>, <see cref="UpsertBatch"/> (once per batch) and <see cref="Remove"/> of a present id.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Adds the product or replaces its vector and facets.</summary>
    public void Upsert(string productId, ReadOnlySpan<float> vector, ProductFacets facets)
    {
        CheckId(productId, nameof(productId));
        CheckFacets(facets, nameof(facets));
        if (vector.Length != Dimensions) throw new ArgumentException($"vector has {vector.Length} values, the index {Dimensions}", nameof(vector));
        var q = new sbyte[Dimensions];
        var q2 = new sbyte[Dimensions];
        float scale = Int8Vector.Quantize(vector, q); // throws on NaN/∞ before anything changes
        float scale2 = QuantizeResidual(vector, q, scale, q2);
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Reserve(1);
            Put(productId, q, scale, q2, scale2, facets);
            _version++;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>Upserts <c>ids.Count</c> products, <paramref name="vectors"/> <c>[n, Dimensions]</c>; all or nothing (every input is checked first). A repeated id: the last one wins.</summary>
    public void UpsertBatch(IReadOnlyList<string> ids, ReadOnlySpan<float> vectors, IReadOnlyList<ProductFacets> facets)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(facets);
        int n = ids.Count;
        if (facets.Count != n) throw new ArgumentException($"{facets.Count} facets for {n} ids", nameof(facets));
        if (vectors.Length != (long)n * Dimensions) throw new ArgumentException($"vectors has {vectors.Length} values, {n} × {Dimensions} expected", nameof(vectors));
        var q = new sbyte[(long)n * Dimensions];   // [n, Dimensions] first layer
        var q2 = new sbyte[(long)n * Dimensions];  // [n, Dimensions] residual layer
        var scales = new float[n];
        var scales2 = new float[n];
        for (int i = 0; i < n; i++)
        {
            CheckId(ids[i], $"{nameof(ids)}[{i}]");
            CheckFacets(facets[i], $"{nameof(facets)}[{i}]");
            var x = vectors.Slice(i * Dimensions, Dimensions);
            try { scales[i] = Int8Vector.Quantize(x, q.AsSpan(i * Dimensions, Dimensions)); }
            catch (ArgumentException e) { throw new ArgumentException($"vector {i} ({ids[i]}): {e.Message}", nameof(vectors), e); }
            scales2[i] = QuantizeResidual(x, q.AsSpan(i * Dimensions, Dimensions), scales[i], q2.AsSpan(i * Dimensions, Dimensions));
        }
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Reserve(n);
            for (int i = 0; i < n; i++)
                Put(ids[i], q.AsSpan(i * Dimensions, Dimensions), scales[i], q2.AsSpan(i * Dimensions, Dimensions), scales2[i], facets[i]);
            _version++;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>Removes the product; false (and nothing changes) when the id is unknown.</summary>
    public bool Remove(string productId)
    {
        ArgumentNullException.ThrowIfNull(productId);
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_slotOf.Remove(productId, out int slot)) return false;
            _ids[slot] = null;
            _occupancy[slot]++;
            _live[slot >> 6] &= ~(1UL << (slot & 63));
            _inStock[slot >> 6] &= ~(1UL << (slot & 63));
            _free.Push(slot);
            _version++;
            return true;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>True when the product exists (and its facets); false for an unknown id.</summary>
    public bool TryGetFacets(string productId, out ProductFacets facets)
    {
        ArgumentNullException.ThrowIfNull(productId);
        _lock.EnterReadLock();
        try
        {
            if (!_slotOf.TryGetValue(productId, out int slot)) { facets = default; return false; }
            facets = new ProductFacets(_category[slot], _price[slot], ((_inStock[slot >> 6] >> (slot & 63)) & 1) != 0);
            return true;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>True when the product is in the index.</summary>
    public bool Contains(string productId)
    {
        ArgumentNullException.ThrowIfNull(productId);
        _lock.EnterReadLock();
        try { return _slotOf.ContainsKey(productId); }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>The top <paramref name="k"/> products passing <paramref name="filter"/> by score against <paramref name="query"/> (<c>[Dimensions]</c>), best first; fewer when fewer pass.</summary>
    public IReadOnlyList<SearchHit> Search(ReadOnlySpan<float> query, int k, ProductFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return SearchBatch(query, k, [filter])[0];
    }

    /// <summary>
    /// One scan for many queries: <paramref name="queries"/> <c>[b, Dimensions]</c>, <paramref name="filters"/> one per query
    /// (queries that share a filter object share its bitmap). Results per query as <see cref="Search"/>.
    /// </summary>
    public IReadOnlyList<SearchHit>[] SearchBatch(ReadOnlySpan<float> queries, int k, IReadOnlyList<ProductFilter> filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        int batch = filters.Count;
        k = Math.Min(k, Math.Max(1, Count)); // no more hits than products (a k of millions asks for "all")
        var hits = new SlotHit[(long)batch * k];   // [batch, k] best first
        var counts = new int[batch];
        SearchSlots(queries, k, filters as ProductFilter[] ?? [.. filters], hits, counts);
        var results = new IReadOnlyList<SearchHit>[batch];
        for (int b = 0; b < batch; b++)
        {
            var list = new List<SearchHit>(counts[b]);
            for (int i = 0; i < counts[b]; i++) list.Add(new SearchHit(hits[b * k + i].ProductId, hits[b * k + i].Score));
            results[b] = list;
        }
        return results;
    }

    /// <summary>
    /// <see cref="SearchBatch"/> into the caller's buffers, with each hit's slot (what <see cref="RankingPipeline"/> maps to its
    /// products without hashing ids): query b's hits are <c>hits[b·k, b·k + counts[b])</c>, best first. Scratch comes from
    /// the shared array pool, so a warmed search allocates nothing.
    /// </summary>
    internal void SearchSlots(ReadOnlySpan<float> queries, int k, ReadOnlySpan<ProductFilter> filters, Span<SlotHit> hits, Span<int> counts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        int batch = filters.Length;
        if (batch == 0 || queries.Length != (long)batch * Dimensions)
            throw new ArgumentException($"queries has {queries.Length} values for {batch} filters of {Dimensions}-vectors", nameof(queries));
        if (hits.Length < (long)batch * k || counts.Length < batch)
            throw new ArgumentException($"buffers hold {hits.Length} hits and {counts.Length} counts, {batch} × {k} and {batch} needed", nameof(hits));
        for (int i = 0; i < queries.Length; i++)
            if (!float.IsFinite(queries[i])) throw new ArgumentException($"query {i / Dimensions} value {i % Dimensions} is {queries[i]}: queries must be finite", nameof(queries));
        for (int b = 0; b < batch; b++) CheckFilter(filters[b], b);

        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            counts[..batch].Clear();
            int count = _slotOf.Count;
            if (count == 0) return;
            int kk = Math.Min(k, count);
            int factor = RescoreFactor;
            int scanK = ScanK(kk, count, factor);
            int rowCount = _highWater;
            int words = VectorScanArguments.MaskWords(rowCount);
            var pool = System.Buffers.ArrayPool<int>.Shared;
            int[] maskOfQuery = pool.Rent(batch);
            int[] rows = pool.Rent(batch * scanK);     // [batch, scanK] candidate slots, best first, −1 padded
            float[] scores = System.Buffers.ArrayPool<float>.Shared.Rent(batch * scanK);
            ulong[]? masks = null;
            try
            {
                // Distinct filters (by reference or value) get one bitmap each: mask m belongs to the first query using it.
                int distinct = 0;
                for (int b = 0; b < batch; b++)
                {
                    int m = -1;
                    for (int e = 0; e < b && m < 0; e++)
                        if (ReferenceEquals(filters[e], filters[b]) || filters[e].Equals(filters[b])) m = maskOfQuery[e];
                    maskOfQuery[b] = m >= 0 ? m : distinct++;
                }
                masks = System.Buffers.ArrayPool<ulong>.Shared.Rent(distinct * words);
                for (int b = 0, built = 0; b < batch; b++)
                    if (maskOfQuery[b] == built) BuildMask(filters[b], masks.AsSpan(built++ * words, words));
                _store.Scan(queries, rowCount, masks.AsSpan(0, distinct * words), maskOfQuery.AsSpan(0, batch), scanK,
                            rows.AsSpan(0, batch * scanK), scores.AsSpan(0, batch * scanK));
                for (int b = 0; b < batch; b++)
                {
                    var into = hits.Slice(b * k, kk);
                    if (factor > 0)
                    {
                        counts[b] = Rescore(queries.Slice(b * Dimensions, Dimensions), rows.AsSpan(b * scanK, scanK), scores.AsSpan(b * scanK, scanK), into);
                        continue;
                    }
                    int n = 0;
                    for (; n < kk; n++)
                    {
                        int slot = rows[b * scanK + n];
                        if (slot < 0) break;
                        into[n] = new SlotHit(slot, _occupancy[slot], _ids[slot]!, scores[b * scanK + n]);
                    }
                    counts[b] = n;
                }
            }
            finally
            {
                pool.Return(maskOfQuery);
                pool.Return(rows);
                System.Buffers.ArrayPool<float>.Shared.Return(scores);
                if (masks is not null) System.Buffers.ArrayPool<ulong>.Shared.Return(masks);
            }
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>
    /// Which of <paramref name="ids"/> each slot holds now: <c>Products[slot]</c> = the position in <paramref name="ids"/> of
    /// the product in that slot, −1 for a free slot or a product not in the list, and the slot's occupancy then
    /// (<c>[slots in use]</c> each). A snapshot: later writes move products, so a reader trusts an entry only while a hit's
    /// <see cref="SlotHit.Occupancy"/> equals it (<see cref="RankingPipeline"/>).
    /// </summary>
    internal (int[] Products, int[] Occupancy) SlotMap(IReadOnlyList<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        _lock.EnterReadLock();
        try
        {
            var map = new int[_highWater];
            Array.Fill(map, -1);
            for (int i = 0; i < ids.Count; i++)
                if (_slotOf.TryGetValue(ids[i], out int slot)) map[slot] = i;
            return (map, _occupancy.AsSpan(0, _highWater).ToArray());
        }
        finally { _lock.ExitReadLock(); }
    }

    private void BuildMask(ProductFilter filter, Span<ulong> mask)
    {
        _live.AsSpan(0, mask.Length).CopyTo(mask);
        if (filter.InStockOnly)
            for (int w = 0; w < mask.Length; w++) mask[w] &= _inStock[w];
        bool byPrice = filter.MinPrice > 0 || filter.MaxPrice < float.PositiveInfinity; // prices are ≥ 0
        var categories = filter.Categories;
        if (!byPrice && categories is null) return;
        HashSet<int>? set = categories is { Count: > 8 } ? [.. categories] : null;
        for (int w = 0; w < mask.Length; w++)
        {
            ulong bits = mask[w], keep = bits;
            while (bits != 0)
            {
                int bit = BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                int slot = (w << 6) + bit;
                bool pass = (!byPrice || (_price[slot] >= filter.MinPrice && _price[slot] <= filter.MaxPrice))
                    && (categories is null || (set?.Contains(_category[slot]) ?? Contains(categories, _category[slot])));
                if (!pass) keep &= ~(1UL << bit);
            }
            mask[w] = keep;
        }

        static bool Contains(IReadOnlyList<int> list, int value)
        {
            for (int i = 0; i < list.Count; i++) if (list[i] == value) return true;
            return false;
        }
    }

    /// <summary>Makes room for <paramref name="n"/> new products (before anything changes, so a failure leaves the index as it was).</summary>
    private void Reserve(int n)
    {
        long needed = (long)_highWater + Math.Max(0, n - _free.Count);
        if (needed <= _ids.Length) return;
        // The residual layer is one managed array of capacity × Dimensions bytes.
        long maxSlots = Math.Min(int.MaxValue / 2, Array.MaxLength / Dimensions);
        if (needed > maxSlots) throw new InvalidOperationException($"index full: {needed} slots of {Dimensions} values (at most {maxSlots})");
        long capacity = Math.Max(InitialCapacity, _ids.Length);
        while (capacity < needed) capacity *= 2;
        capacity = Math.Min(capacity, maxSlots);
        _store.EnsureCapacity((int)capacity);
        Grow((int)capacity);
    }

    private void Grow(int capacity)
    {
        Array.Resize(ref _ids, capacity);
        Array.Resize(ref _occupancy, capacity);
        Array.Resize(ref _category, capacity);
        Array.Resize(ref _price, capacity);
        Array.Resize(ref _live, (capacity + 63) >> 6);
        Array.Resize(ref _inStock, (capacity + 63) >> 6);
        Array.Resize(ref _residual, checked(capacity * Dimensions));
        Array.Resize(ref _residualScale, capacity);
    }

    /// <summary>Writes one product into its slot (existing, free or new). Caller holds the write lock and has reserved room.</summary>
    private void Put(string id, ReadOnlySpan<sbyte> values, float scale, ReadOnlySpan<sbyte> residual, float residualScale, ProductFacets facets)
    {
        if (!_slotOf.TryGetValue(id, out int slot))
        {
            slot = _free.Count > 0 ? _free.Pop() : _highWater++;
            _slotOf.Add(id, slot);
            _ids[slot] = id;
        }
        _store.WriteRow(slot, values, scale);
        residual.CopyTo(_residual.AsSpan(slot * Dimensions, Dimensions));
        _residualScale[slot] = residualScale;
        _category[slot] = facets.Category;
        _price[slot] = facets.Price;
        ulong bit = 1UL << (slot & 63);
        _live[slot >> 6] |= bit;
        if (facets.InStock) _inStock[slot >> 6] |= bit;
        else _inStock[slot >> 6] &= ~bit;
    }

    private static void CheckId(string id, string name)
    {
        if (string.IsNullOrEmpty(id)) throw new ArgumentException("product id is null or empty", name);
        if (System.Text.Encoding.UTF8.GetByteCount(id) > MaxIdBytes)
            throw new ArgumentException($"product id is longer than {MaxIdBytes} UTF-8 bytes", name);
    }

    private static void CheckFacets(ProductFacets facets, string name)
    {
        if (!float.IsFinite(facets.Price) || facets.Price < 0)
            throw new ArgumentException($"price {facets.Price} must be finite and ≥ 0", name);
    }

    private static void CheckFilter(ProductFilter? filter, int index)
    {
        if (filter is null) throw new ArgumentNullException($"filters[{index}]");
        if (float.IsNaN(filter.MinPrice) || float.IsNaN(filter.MaxPrice))
            throw new ArgumentException($"filter {index}: price bounds must not be NaN", "filters");
    }

    /// <summary>Frees the scanner's row storage.</summary>
    public void Dispose()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_disposed) return;
            _disposed = true;
            _store.Dispose();
        }
        finally { _lock.ExitWriteLock(); }
    }
}
