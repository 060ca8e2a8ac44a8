using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of a similarity launch.</summary>
public struct SimilarityParams
{
    /// <summary>Number of vectors and their dimension (a multiple of 4).</summary>
    public int Count, Dims;

    /// <summary>1 when the filter bitmap is used.</summary>
    public int UseFilter;
}

/// <summary>
/// Scores of a query batch against an int8 vector matrix: <c>scores[b, v] = scale[v] · Σ_j q[b, j] · m[v, j]</c>,
/// or −∞ where the filter bitmap has bit v clear (those vectors are not read at all). One warp per
/// vector, grid Y = query; lanes read consecutive ints (four int8 each): coalesced.
/// </summary>
public static class SimilarityKernel
{
    /// <param name="vectors">[count, dims/4] int: four int8 per int</param>
    /// <param name="scales">[count] f32</param>
    /// <param name="filter">[ceil(count/32)] uint bitmap, bit v set = allowed (dummy when unused)</param>
    /// <param name="queries">[batch, dims] f32</param>
    /// <param name="scores">[batch, count] f32</param>
    public static void Kernel(ArrayView<int> vectors, ArrayView<float> scales, ArrayView<uint> filter, ArrayView<float> queries,
        ArrayView<float> scores, SimilarityParams p)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int v = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int b = Grid.IdxY;
        if (v >= p.Count) return; // uniform across the warp
        long outAt = (long)b * p.Count + v;
        if (p.UseFilter != 0 && ((filter[v >> 5] >> (v & 31)) & 1) == 0)
        {
            if (Warp.IsFirstLane) scores[outAt] = float.NegativeInfinity;
            return;
        }
        int words = p.Dims / 4;
        long vBase = (long)v * words;
        long qBase = (long)b * p.Dims;
        float sum = 0;
        for (int c = Warp.LaneIdx; c < words; c += Warp.WarpSize)
        {
            int packed = vectors[vBase + c];
            long qi = qBase + c * 4;
            sum += queries[qi] * ((packed << 24) >> 24)
                 + queries[qi + 1] * ((packed << 16) >> 24)
                 + queries[qi + 2] * ((packed << 8) >> 24)
                 + queries[qi + 3] * (packed >> 24);
        }
        sum = Reductions.WarpSum(sum);
        if (Warp.IsFirstLane) scores[outAt] = sum * scales[v];
    }
}
