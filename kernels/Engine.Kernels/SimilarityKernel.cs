using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

/// <summary>Shape of a similarity launch.</summary>
public struct SimilarityParams
{
    /// <summary>Number of vectors and their dimension (a multiple of 4).</summary>
    public int Count, Dims;

    /// <summary>1 when the filter bitmap is used.</summary>
    public int UseFilter;
}

/// <summary>Shape of a <see cref="SimilarityKernel.KernelWide"/> launch.</summary>
public struct WideSimilarityParams
{
    /// <summary>Number of vectors; int32 words per vector (dims / 4, a multiple of 4: whole 16-byte chunks).</summary>
    public int Count, Words;

    /// <summary>1 when the filter bitmap is used.</summary>
    public int UseFilter;

    /// <summary>Vectors per group (one tile), and tiles per query: ceil(Count / TileRows).</summary>
    public int TileRows, Tiles;
}

/// <summary>Sixteen int8 values (four int32 words): one 16-byte vector load.</summary>
public struct Int8x16
{
    /// <summary>Words 0..3, four int8 each, lowest byte first.</summary>
    public int W0, W1, W2, W3;
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

    /// <summary>Lanes that share one vector in <see cref="KernelWide"/> (fewer where the warp is narrower, as on the CPU accelerator).</summary>
    public const int LanesPerRow = 8;

    /// <summary>Largest dimension <see cref="KernelWide"/> takes: its query lives in shared memory as int16 pairs (4 KiB).</summary>
    public const int MaxWideDims = 2048;

    /// <summary>
    /// Largest |value| of a quantized query of <paramref name="dims"/> values: 32767, or less where
    /// <c>dims · 127 · qmax</c> would overflow the int32 dot product (dims above 516).
    /// </summary>
    public static int QueryMax(int dims) => (int)Math.Min(short.MaxValue, int.MaxValue / (127L * Math.Max(1, dims)));

    /// <summary>
    /// Quantizes one f32 query to int16 for <see cref="KernelWide"/>: <c>q[j] ≈ scale · dst[j]</c> with the largest
    /// |q| mapped to <see cref="QueryMax"/> (round to nearest even), the same scheme as the SIMD CPU scanner.
    /// Returns the scale (0 for an all-zero query).
    /// </summary>
    public static float QuantizeQuery(ReadOnlySpan<float> q, Span<short> dst)
    {
        if (dst.Length < q.Length) throw new ArgumentException($"destination has {dst.Length} values, {q.Length} needed", nameof(dst));
        int qmax = QueryMax(q.Length);
        float amax = 0;
        foreach (float x in q) amax = Math.Max(amax, Math.Abs(x));
        float scale = amax / qmax;
        float inv = scale != 0 ? qmax / amax : 0f;
        for (int j = 0; j < q.Length; j++) dst[j] = (short)Math.Clamp(MathF.Round(q[j] * inv), -qmax, qmax);
        return scale;
    }

    /// <summary>
    /// The scalar reference of <see cref="KernelWide"/>'s score for one vector: the exact int32 dot product of the
    /// int16 query and the int8 row, then <c>(f32)dot · queryScale · scale</c> in that order, as the kernel computes it
    /// (so the two agree bit for bit).
    /// </summary>
    public static float WideScore(ReadOnlySpan<short> query, float queryScale, ReadOnlySpan<sbyte> row, float scale)
    {
        int dot = 0;
        for (int j = 0; j < row.Length; j++) dot += query[j] * row[j];
        return (float)dot * queryScale * scale;
    }

    /// <summary>
    /// Scores like <see cref="Kernel"/>, read at memory bandwidth: each vector is read by <see cref="LanesPerRow"/>
    /// lanes in 16-byte loads (<see cref="Int8x16"/>; several vectors per warp), the query is int16
    /// (<see cref="QuantizeQuery"/>) and held in shared memory, and each 4-byte word is two PTX <c>dp2a</c>
    /// (int16 × int8 pairs into an int32 sum; a portable form elsewhere), so a score is
    /// <c>(f32)dot · queryScale · scale[v]</c> from an exact int32 dot. Grid X = tile of
    /// <see cref="WideSimilarityParams.TileRows"/> vectors, grid Y = query; each group also writes its tile's best
    /// score, from which <see cref="TopKSelectKernel.KernelTiles"/> bounds the k-th best score without reading every score.
    /// Filtered vectors score −∞ and are not read.
    /// </summary>
    /// <param name="vectors">[count, words/4] 16-byte chunks (rows padded to 16 bytes)</param>
    /// <param name="scales">[count] f32</param>
    /// <param name="filter">[ceil(count/32)] uint bitmap, bit v set = allowed (dummy when unused)</param>
    /// <param name="queries">[batch, words*2] int: two int16 query values each, lower index in the low half</param>
    /// <param name="queryScales">[batch] f32</param>
    /// <param name="scores">[batch, count] f32</param>
    /// <param name="tileMax">[batch, tiles] f32: best score of each tile, −∞ when none is allowed</param>
    public static void KernelWide(ArrayView<Int8x16> vectors, ArrayView<float> scales, ArrayView<uint> filter, ArrayView<int> queries,
        ArrayView<float> queryScales, ArrayView<float> scores, ArrayView<float> tileMax, WideSimilarityParams p)
    {
        var q = SharedMemory.Allocate<int>(MaxWideDims / 2); // [words*2] int16 pairs of this query
        int b = Grid.IdxY;
        int qInts = p.Words * 2;
        long qBase = (long)b * qInts;
        for (int i = Group.IdxX; i < qInts; i += Group.DimX) q[i] = queries[qBase + i];
        Group.Barrier();

        int lanes = Warp.WarpSize < LanesPerRow ? Warp.WarpSize : LanesPerRow;
        int sub = Group.IdxX % lanes;            // lane within the vector
        int rowsPerStep = Group.DimX / lanes;
        int chunks = p.Words >> 2;               // 16-byte chunks per vector
        float qs = queryScales[b];
        int start = Grid.IdxX * p.TileRows;
        int end = start + p.TileRows < p.Count ? start + p.TileRows : p.Count;
        long outBase = (long)b * p.Count;
        float best = float.NegativeInfinity;
        for (int r0 = start; r0 < end; r0 += rowsPerStep) // uniform: every lane shuffles below
        {
            int v = r0 + Group.IdxX / lanes;
            bool live = v < end && (p.UseFilter == 0 || ((filter[v >> 5] >> (v & 31)) & 1) != 0);
            int dot = 0;
            if (live)
            {
                long rowBase = (long)v * chunks;
                int c = sub;
                // Two loads in flight before either is used.
                for (; c + lanes < chunks; c += 2 * lanes)
                {
                    Int8x16 x0 = vectors[rowBase + c];
                    Int8x16 x1 = vectors[rowBase + c + lanes];
                    dot = Dot16(x0, q, c * 8, dot);
                    dot = Dot16(x1, q, (c + lanes) * 8, dot);
                }
                if (c < chunks) dot = Dot16(vectors[rowBase + c], q, c * 8, dot);
            }
            for (int offset = lanes / 2; offset > 0; offset >>= 1)
                dot += Warp.ShuffleXor(dot, offset);
            if (v < end && sub == 0)
            {
                float s = live ? (float)dot * qs * scales[v] : float.NegativeInfinity;
                scores[outBase + v] = s;
                if (s > best) best = s;
            }
        }
        float m = Reductions.GroupMax(best);
        if (Group.IdxX == 0) tileMax[(long)b * p.Tiles + Grid.IdxX] = m;
    }

    /// <summary>Adds the dot product of 16 int8 values and the 16 int16 query values at <c>q[qi .. qi+8)</c> to <paramref name="acc"/>.</summary>
    private static int Dot16(Int8x16 x, ArrayView<int> q, int qi, int acc)
    {
        acc = Dot4(x.W0, q[qi], q[qi + 1], acc);
        acc = Dot4(x.W1, q[qi + 2], q[qi + 3], acc);
        acc = Dot4(x.W2, q[qi + 4], q[qi + 5], acc);
        return Dot4(x.W3, q[qi + 6], q[qi + 7], acc);
    }

    /// <summary>
    /// acc + Σ four int8 of <paramref name="w"/> × four int16 (<paramref name="qLo"/>: values 0, 1; <paramref name="qHi"/>: 2, 3):
    /// two PTX <c>dp2a</c> on CUDA (sm_61+), shifts and multiplies elsewhere (the same exact int32 result).
    /// </summary>
    private static int Dot4(int w, int qLo, int qHi, int acc)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("dp2a.lo.s32.s32 %0, %1, %2, %3;", out int half, qLo, w, acc);
            CudaAsm.Emit("dp2a.hi.s32.s32 %0, %1, %2, %3;", out int sum, qHi, w, half);
            return sum;
        }
        return acc
            + ((qLo << 16) >> 16) * ((w << 24) >> 24)
            + (qLo >> 16) * ((w << 16) >> 24)
            + ((qHi << 16) >> 16) * ((w << 8) >> 24)
            + (qHi >> 16) * (w >> 24);
    }
}
