using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// RMSNorm of each row, one group per row: <c>dst[r, i] = x[r, i] / sqrt(mean(x[r]²) + eps) * w[i]</c>.
/// The sum of squares is f32 here (the reference sums in double, as ggml): the difference is within the
/// op's tolerance. dst may equal x (each element is read before it is written by the same thread).
/// </summary>
public static class RmsNormKernel
{
    /// <param name="x">[n, dim] f32</param>
    /// <param name="w">[dim] f32</param>
    /// <param name="dst">[n, dim] f32</param>
    public static void Kernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> dst, int dim, float eps)
    {
        long row = (long)Grid.IdxX * dim;
        float scale = InverseRms(x, row, dim, eps, Group.DimX);
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
            dst[row + i] = x[row + i] * scale * w[i];
    }

    /// <summary>
    /// RMSNorm that also quantizes its output rows to Q8_0 for the matrix product that follows (one launch
    /// instead of two). Needs dim % 32 == 0. The quantization reads dst after a group barrier, so it sees
    /// exactly what the separate quantize kernel would.
    /// </summary>
    /// <param name="xq">[n, dim/4] int</param>
    /// <param name="xd">[n, dim/32] f32</param>
    /// <remarks>Grid: (n, slices); slices &gt; 1 only on warps of a multiple of 32 lanes (each slice group takes every
    /// slices-th run of group-size elements).</remarks>
    public static void KernelQuantize(ArrayView<float> x, ArrayView<float> w, ArrayView<float> dst, ArrayView<int> xq, ArrayView<float> xd, int dim, float eps)
    {
        if (Warp.WarpSize % 32 == 0)
        {
            // CUDA: each element is quantized by its own lane (32 lanes = one block), no second pass over dst. Grid Y slices
            // the row: every group sums the whole row's squares (the same sum in each: a row is a few KB of L2) and
            // normalizes only its slice, so a decode step's single row is not one group's chain of round trips.
            long start = (long)Grid.IdxX * dim;
            float scale = InverseRms(x, start, dim, eps, Group.DimX);
            ScaleQuantizeLanes(x, w, dst, true, xq, xd, start, start, dim, scale, Grid.IdxY * Group.DimX + Group.IdxX, Group.DimX * Grid.DimY);
            return;
        }
        if (Grid.IdxY != 0) return; // one slice off CUDA's warps (uniform over the group)
        Kernel(x, w, dst, dim, eps);
        Group.Barrier();
        long row = Grid.IdxX;
        int blocks = dim / 32;
        for (int b = Group.IdxX; b < blocks; b += Group.DimX)
            QuantizeQ8_0Kernel.QuantizeBlock(dst, row * dim + b * 32, xq, xd, row * blocks + b);
    }

    /// <summary>
    /// The prologue of the fused products (<see cref="NormMatVecQ8_0Kernel"/>, <see cref="GateUpSwiGluKernel"/>): RMSNorm of
    /// input row <paramref name="row"/> of x by this group, quantized to Q8_0 into <paramref name="xq"/> [dim/4] int and
    /// <paramref name="xd"/> [dim/32] f32 (this group's shared memory) with exactly <see cref="KernelQuantize"/>'s
    /// arithmetic (same group size: same sums, same values), and written to dst's row too when
    /// <paramref name="writeDst"/> (one group per row does, so that dst holds what the unfused RMSNorm leaves).
    /// Every thread of the group must call it (barriers); dim % 32 == 0. Ends with a group barrier: xq/xd are ready.
    /// <paramref name="lanes"/> (warps of a multiple of 32 lanes only): a thread per element, the block's amax by shuffles
    /// (CUDA); else a thread per block of 32 (no shuffles: the CPU accelerator pays a barrier per shuffle). Same values.
    /// <paramref name="normThreads"/>: the group size of the unfused <see cref="KernelQuantize"/> (≤ this group's), so that
    /// the sum of squares, and with it every value, is that kernel's bit for bit (<see cref="InverseRms"/>).
    /// </summary>
    internal static void NormQuantizeRow(ArrayView<float> x, ArrayView<float> w, ArrayView<float> dst, bool writeDst,
        ArrayView<int> xq, ArrayView<float> xd, int row, int dim, float eps, bool lanes, int normThreads)
    {
        long start = (long)row * dim;
        float scale = InverseRms(x, start, dim, eps, normThreads);
        if (lanes && Warp.WarpSize % 32 == 0)
        {
            ScaleQuantizeLanes(x, w, dst, writeDst, xq, xd, start, 0, dim, scale, Group.IdxX, Group.DimX);
        }
        else
        {
            int blocks = dim / 32;
            for (int b = Group.IdxX; b < blocks; b += Group.DimX)
                QuantizeQ8_0Kernel.QuantizeScaledBlock(x, start + b * 32, w, b * 32, scale, dst, writeDst, xq, xd, b);
        }
        Group.Barrier();
    }

    /// <summary>
    /// The thread-per-element half of the norm (CUDA's warps): elements i = first, first + stride, … of the row at
    /// <paramref name="start"/> become <c>x · scale · w</c>, written to dst when <paramref name="writeDst"/> and quantized
    /// as Q8_0 elements <paramref name="qBase"/> + i of xq/xd. dim, first's warp base and stride are multiples of 32, so the
    /// lanes with i &lt; dim (and i + 3·stride &lt; dim) are whole warps; four elements' loads are issued before the first
    /// one's shuffles.
    /// </summary>
    private static void ScaleQuantizeLanes(ArrayView<float> x, ArrayView<float> w, ArrayView<float> dst, bool writeDst,
        ArrayView<int> xq, ArrayView<float> xd, long start, long qBase, int dim, float scale, int first, int stride)
    {
        int s = stride;
        int i = first;
        for (; i + 3 * s < dim; i += 4 * s)
        {
            long at = start + i;
            float x0 = x[at], x1 = x[at + s], x2 = x[at + 2 * s], x3 = x[at + 3 * s];
            float w0 = w[i], w1 = w[i + s], w2 = w[i + 2 * s], w3 = w[i + 3 * s];
            float v0 = x0 * scale * w0, v1 = x1 * scale * w1, v2 = x2 * scale * w2, v3 = x3 * scale * w3;
            if (writeDst)
            {
                dst[at] = v0;
                dst[at + s] = v1;
                dst[at + 2 * s] = v2;
                dst[at + 3 * s] = v3;
            }
            long q = qBase + i;
            QuantizeQ8_0Kernel.QuantizeLane(v0, q, xq, xd);
            QuantizeQ8_0Kernel.QuantizeLane(v1, q + s, xq, xd);
            QuantizeQ8_0Kernel.QuantizeLane(v2, q + 2 * s, xq, xd);
            QuantizeQ8_0Kernel.QuantizeLane(v3, q + 3 * s, xq, xd);
        }
        for (; i < dim; i += s)
        {
            float v = x[start + i] * scale * w[i];
            if (writeDst) dst[start + i] = v;
            QuantizeQ8_0Kernel.QuantizeLane(v, qBase + i, xq, xd);
        }
    }

    /// <summary>
    /// 1 / sqrt(mean(x[start..start+dim)²) + eps), summed by the group's first <paramref name="threads"/> threads (every
    /// thread must call it and gets the result; the others add zeros, which leaves the sum bit for bit what a group of
    /// <paramref name="threads"/> threads computes: a folded kernel in a larger group normalizes exactly as the unfused one).
    /// Each thread issues four loads before it adds them (in the order of the one-at-a-time loop, so the sum is unchanged):
    /// one row is all a group reads here, and four round trips to memory in a row were most of a decode step's norm.
    /// </summary>
    internal static float InverseRms(ArrayView<float> x, long start, int dim, float eps, int threads)
    {
        float ss = 0;
        int tid = Group.IdxX;
        if (tid < threads)
        {
            int i = tid;
            for (; i + 3 * threads < dim; i += 4 * threads)
            {
                long at = start + i;
                float a = x[at], b = x[at + threads], c = x[at + 2 * threads], d = x[at + 3 * threads];
                ss += a * a;
                ss += b * b;
                ss += c * c;
                ss += d * d;
            }
            for (; i < dim; i += threads)
            {
                float v = x[start + i];
                ss += v * v;
            }
        }
        ss = Reductions.GroupSum(ss);
        return 1f / ILGPU.Algorithms.XMath.Sqrt(ss / dim + eps);
    }
}
