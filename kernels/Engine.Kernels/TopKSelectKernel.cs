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

    /// <summary>Higher score first; among equal scores the smaller id, then the smaller slot.</summary>
    private static bool Better(float s1, int id1, int l1, float s2, int id2, int l2) =>
        s1 > s2 || (s1 == s2 && (id1 < id2 || (id1 == id2 && l1 < l2)));
}
