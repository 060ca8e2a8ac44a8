using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of one top-k selection pass.</summary>
public struct TopKParams
{
    /// <summary>Candidates per query in the input, and how many to keep per chunk.</summary>
    public int Count, K;

    /// <summary>1 when candidate ids are their indices (the first pass over raw scores).</summary>
    public int ImplicitIds;

    /// <summary>Output candidates per query: chunks × K.</summary>
    public int OutStride;
}

/// <summary>Shape of a <see cref="TopKSelectKernel.KernelTiles"/> launch.</summary>
public struct TileSelectParams
{
    /// <summary>Scores per query, results per query.</summary>
    public int Count, K;

    /// <summary>Scores per tile (a power of two) and its log2; tiles per query (at most <see cref="TopKSelectKernel.MaxTiles"/>).</summary>
    public int TileRows, TileShift, Tiles;
}

/// <summary>
/// One pass of a tree top-k: each group loads a chunk of <see cref="Chunk"/> (score, id) candidates into
/// shared memory and extracts its K best by K rounds of a group arg-max (ties to the smaller id), writing
/// them in descending order. Passes repeat over the chunk winners until one chunk remains:
/// 1M scores, K = 50 → 489 chunks → 24,450 → 12 → 600 → 1. Grid X = chunk, grid Y = query.
/// Empty slots (−∞, filtered vectors) come out with id −1.
/// </summary>
public static class TopKSelectKernel
{
    /// <summary>Candidates per group: 2048 × (4 + 4) bytes = 16 KiB of shared memory.</summary>
    public const int Chunk = 2048;

    private const int MaxWarps = 32;

    /// <param name="inScores">[batch, count] f32</param>
    /// <param name="inIds">[batch, count] int (dummy when ids are implicit)</param>
    /// <param name="outScores">[batch, outStride] f32</param>
    /// <param name="outIds">[batch, outStride] int</param>
    public static void Kernel(ArrayView<float> inScores, ArrayView<int> inIds, ArrayView<float> outScores, ArrayView<int> outIds, TopKParams p)
    {
        var s = SharedMemory.Allocate<float>(Chunk);
        var ids = SharedMemory.Allocate<int>(Chunk);
        var ws = SharedMemory.Allocate<float>(MaxWarps);
        var wi = SharedMemory.Allocate<int>(MaxWarps);
        var wl = SharedMemory.Allocate<int>(MaxWarps);

        int g = Grid.IdxX;
        int b = Grid.IdxY;
        long start = (long)g * Chunk;
        long inBase = (long)b * p.Count;
        for (int i = Group.IdxX; i < Chunk; i += Group.DimX)
        {
            long j = start + i;
            if (j < p.Count)
            {
                float v = inScores[inBase + j];
                int id = p.ImplicitIds != 0 ? (int)j : inIds[inBase + j];
                bool empty = v == float.NegativeInfinity || id < 0;
                s[i] = empty ? float.NegativeInfinity : v;
                ids[i] = empty ? int.MaxValue : id;
            }
            else
            {
                s[i] = float.NegativeInfinity;
                ids[i] = int.MaxValue;
            }
        }
        Group.Barrier();

        long outBase = (long)b * p.OutStride + (long)g * p.K;
        int warps = Group.DimX / Warp.WarpSize;
        for (int round = 0; round < p.K; round++)
        {
            float bs = float.NegativeInfinity;
            int bi = int.MaxValue;
            int bl = int.MaxValue;
            for (int i = Group.IdxX; i < Chunk; i += Group.DimX)
            {
                if (Better(s[i], ids[i], i, bs, bi, bl)) { bs = s[i]; bi = ids[i]; bl = i; }
            }
            for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
            {
                float os = Warp.ShuffleXor(bs, offset);
                int oi = Warp.ShuffleXor(bi, offset);
                int ol = Warp.ShuffleXor(bl, offset);
                if (Better(os, oi, ol, bs, bi, bl)) { bs = os; bi = oi; bl = ol; }
            }
            if (Warp.IsFirstLane) { ws[Warp.WarpIdx] = bs; wi[Warp.WarpIdx] = bi; wl[Warp.WarpIdx] = bl; }
            Group.Barrier();
            if (Group.IdxX == 0)
            {
                for (int w = 1; w < warps; w++)
                    if (Better(ws[w], wi[w], wl[w], bs, bi, bl)) { bs = ws[w]; bi = wi[w]; bl = wl[w]; }
                bool empty = bs == float.NegativeInfinity;
                outScores[outBase + round] = bs;
                outIds[outBase + round] = empty ? -1 : bi;
                if (!empty) { s[bl] = float.NegativeInfinity; ids[bl] = int.MaxValue; }
            }
            Group.Barrier();
        }
    }

    /// <summary>Most tiles <see cref="KernelTiles"/> takes (their maxima are sorted in shared memory: 8 KiB).</summary>
    public const int MaxTiles = 1024;

    /// <summary>Most candidates <see cref="KernelTiles"/> keeps (sorted in shared memory: 16 KiB); more and it reports an overflow.</summary>
    public const int MaxCandidates = 2048;

    /// <summary>
    /// Exact top-k of one query's scores from the tile maxima of <see cref="SimilarityKernel.KernelWide"/>, in one group
    /// per query: (1) sort the tile maxima and take the k-th largest, T — k distinct vectors score at least T, so
    /// every member of the top k scores ≥ T and lies in a tile whose maximum is ≥ T; (2) gather the scores ≥ T of those
    /// tiles (about k of them on random data: ~50 tiles of 1,024 scores for 1M vectors, k = 50, instead of all 1M);
    /// (3) sort the candidates by (score descending, index ascending) and write the first k. The result equals a full
    /// sort's: ties go to the smaller index, scores below every allowed one (−∞, filtered) come out as id −1, and
    /// fewer than k allowed vectors pad with −1 / −∞. Where more than <see cref="MaxCandidates"/> scores reach T (many
    /// equal scores) it writes status −1 and the caller runs the tree passes of <see cref="Kernel"/> instead.
    /// Grid X = 1, grid Y = query.
    /// </summary>
    /// <param name="scores">[batch, count] f32</param>
    /// <param name="tileMax">[batch, tiles] f32</param>
    /// <param name="outScores">[batch, k] f32, best first</param>
    /// <param name="outIds">[batch, k] int</param>
    /// <param name="status">[batch] int: candidates sorted, or −1 on overflow (outputs then undefined)</param>
    public static void KernelTiles(ArrayView<float> scores, ArrayView<float> tileMax, ArrayView<float> outScores, ArrayView<int> outIds,
        ArrayView<int> status, TileSelectParams p)
    {
        var tiles = SharedMemory.Allocate<ulong>(MaxTiles);       // (descending key of the tile maximum, tile)
        var cand = SharedMemory.Allocate<ulong>(MaxCandidates);   // (descending key of the score, index)
        var shared = SharedMemory.Allocate<int>(2);               // [0] qualifying tiles, [1] candidates
        int b = Grid.IdxY;
        int tid = Group.IdxX, threads = Group.DimX;

        int nTiles = PowerOfTwo(p.Tiles);
        long tileBase = (long)b * p.Tiles;
        for (int i = tid; i < nTiles; i += threads)
            tiles[i] = i < p.Tiles ? ((ulong)DescendingKey(tileMax[tileBase + i]) << 32) | (uint)i : ulong.MaxValue;
        if (tid == 0) { shared[0] = 0; shared[1] = 0; }
        Group.Barrier();
        BitonicSort(tiles, nTiles);

        // T as a key: the k-th smallest tile key, and never beyond the last finite score (−∞ is no candidate).
        uint limit = DescendingKey(float.NegativeInfinity) - 1;
        uint kth = (uint)(tiles[p.K <= nTiles ? p.K - 1 : nTiles - 1] >> 32);
        if (p.K > p.Tiles) kth = uint.MaxValue;
        uint threshold = kth < limit ? kth : limit;
        // The qualifying tiles are a prefix of the sorted array: its length is where the keys pass T.
        for (int i = tid; i < nTiles; i += threads)
        {
            bool inside = (uint)(tiles[i] >> 32) <= threshold;
            bool nextOutside = i + 1 == nTiles || (uint)(tiles[i + 1] >> 32) > threshold;
            if (inside && nextOutside) shared[0] = i + 1;
        }
        Group.Barrier();
        int qualifying = shared[0];

        // Gather: every score ≥ T of the qualifying tiles, four loads in flight per thread.
        long scoreBase = (long)b * p.Count;
        int items = qualifying << p.TileShift;
        int mask = p.TileRows - 1;
        for (int x = tid; x < items; x += 4 * threads)
        {
            long v0 = Row(tiles, x, p.TileShift, mask), v1 = Row(tiles, x + threads, p.TileShift, mask);
            long v2 = Row(tiles, x + 2 * threads, p.TileShift, mask), v3 = Row(tiles, x + 3 * threads, p.TileShift, mask);
            bool in0 = v0 < p.Count, in1 = x + threads < items && v1 < p.Count;
            bool in2 = x + 2 * threads < items && v2 < p.Count, in3 = x + 3 * threads < items && v3 < p.Count;
            float s0 = in0 ? scores[scoreBase + v0] : float.NegativeInfinity;
            float s1 = in1 ? scores[scoreBase + v1] : float.NegativeInfinity;
            float s2 = in2 ? scores[scoreBase + v2] : float.NegativeInfinity;
            float s3 = in3 ? scores[scoreBase + v3] : float.NegativeInfinity;
            Offer(cand, shared, in0, s0, v0, threshold);
            Offer(cand, shared, in1, s1, v1, threshold);
            Offer(cand, shared, in2, s2, v2, threshold);
            Offer(cand, shared, in3, s3, v3, threshold);
        }
        Group.Barrier();
        int n = shared[1];
        if (n > MaxCandidates)
        {
            if (tid == 0) status[b] = -1;
            return; // uniform: every thread read the same n
        }
        int nSort = PowerOfTwo(n > p.K ? n : p.K);
        for (int i = n + tid; i < nSort; i += threads) cand[i] = ulong.MaxValue;
        Group.Barrier();
        BitonicSort(cand, nSort);

        long outBase = (long)b * p.K;
        for (int r = tid; r < p.K; r += threads)
        {
            bool real = r < n;
            outScores[outBase + r] = real ? FromDescendingKey((uint)(cand[r] >> 32)) : float.NegativeInfinity;
            outIds[outBase + r] = real ? (int)(uint)cand[r] : -1;
        }
        if (tid == 0) status[b] = n;
    }

    /// <summary>Vector index of gather item <paramref name="x"/>: slot x &amp; mask of the (x &gt;&gt; shift)-th qualifying tile.</summary>
    private static long Row(ArrayView<ulong> tiles, int x, int shift, int mask)
    {
        int j = x >> shift;
        if (j >= MaxTiles) return long.MaxValue; // past the items (the caller checks x too)
        return ((long)(uint)tiles[j] << shift) + (x & mask);
    }

    /// <summary>Appends (score, index) to the candidates when it is in range and reaches <paramref name="threshold"/>.</summary>
    private static void Offer(ArrayView<ulong> cand, ArrayView<int> shared, bool valid, float score, long v, uint threshold)
    {
        if (!valid) return;
        uint key = DescendingKey(score);
        if (key > threshold) return;
        int slot = Atomic.Add(ref shared[1], 1);
        if (slot < MaxCandidates) cand[slot] = ((ulong)key << 32) | (uint)v;
    }

    /// <summary>
    /// A key whose ascending order is the score's descending order: the f32 bits made monotonic (negatives
    /// flipped), then complemented; −0 counts as +0 so that equal scores tie on the index.
    /// </summary>
    internal static uint DescendingKey(float score)
    {
        uint u = (uint)Interop.FloatAsInt(score);
        if (u == 0x8000_0000u) u = 0;
        uint ordered = (u & 0x8000_0000u) != 0 ? ~u : u | 0x8000_0000u;
        return ~ordered;
    }

    /// <summary>Inverse of <see cref="DescendingKey"/>.</summary>
    internal static float FromDescendingKey(uint key)
    {
        uint ordered = ~key;
        uint u = (ordered & 0x8000_0000u) != 0 ? ordered & 0x7FFF_FFFFu : ~ordered;
        return Interop.IntAsFloat(u);
    }

    private static int PowerOfTwo(int n)
    {
        int p = 1;
        while (p < n) p <<= 1;
        return p;
    }

    /// <summary>Ascending bitonic sort of <c>a[0 .. n)</c> (n a power of two) by the whole group; ends with a barrier.</summary>
    private static void BitonicSort(ArrayView<ulong> a, int n)
    {
        for (int size = 2; size <= n; size <<= 1)
        {
            for (int stride = size >> 1; stride > 0; stride >>= 1)
            {
                for (int t = Group.IdxX; t < n / 2; t += Group.DimX)
                {
                    int i = 2 * t - (t & (stride - 1));
                    int j = i + stride;
                    ulong x = a[i], y = a[j];
                    bool ascending = (i & size) == 0;
                    if ((x > y) == ascending) { a[i] = y; a[j] = x; }
                }
                Group.Barrier();
            }
        }
    }

    /// <summary>Higher score first; among equal scores the smaller id, then the smaller slot.</summary>
    private static bool Better(float s1, int id1, int l1, float s2, int id2, int l2) =>
        s1 > s2 || (s1 == s2 && (id1 < id2 || (id1 == id2 && l1 < l2)));
}
