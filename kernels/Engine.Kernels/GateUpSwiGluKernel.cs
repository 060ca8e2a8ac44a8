using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shapes of the fused gate/up product (<see cref="GateUpSwiGluKernel"/>).</summary>
public struct GateUpParams
{
    /// <summary>Rows of the gate and of the up weight (the feed-forward width), a multiple of 32.</summary>
    public int Rows;

    /// <summary>Q8_0 blocks per row (cols / 32).</summary>
    public int Blocks;

    /// <summary>The RMSNorm's epsilon (<see cref="GateUpSwiGluKernel.KernelNorm"/> only).</summary>
    public float Eps;

    /// <summary>1: quantize a thread per element (warps of 32 lanes: CUDA); 0: a thread per block of 32 (see <see cref="NormMatParams.Lanes"/>).</summary>
    public int Lanes;

    /// <summary>
    /// Outputs per group: <see cref="GateUpSwiGluKernel.Width"/> (the group quantizes its own block of h), or the group's
    /// warps when that divides 32 (one output per warp; the block's last group to finish quantizes it: the spread form).
    /// </summary>
    public int Outputs;

    /// <summary>Threads that sum the norm's squares (<see cref="GateUpSwiGluKernel.KernelNorm"/>): the unfused RMSNorm's group size, see <see cref="NormMatParams.NormThreads"/>.</summary>
    public int NormThreads;

    /// <summary>1: gate/up rows by <see cref="MatVecQ8_0Kernel.RowDotPairWide"/> (64-bit weight loads, the same sums); 0: <see cref="MatVecQ8_0Kernel.RowDotPair"/>.</summary>
    public int Wide;
}

/// <summary>
/// The feed-forward's first half in one launch: <c>g = x · W_gateᵀ</c>, <c>u = x · W_upᵀ</c>, <c>h = silu(g) · u</c> and h
/// quantized to Q8_0 for the down projection (what MatMul([gate, up]) then SwiGlu did in two launches).
/// Each group owns <see cref="Width"/> = 32 consecutive outputs j (one Q8_0 block of h): its warps take them in turn, each
/// computing gate row j and up row j together (<see cref="MatVecQ8_0Kernel.RowDotPair"/>), then the group quantizes the
/// block from shared memory (on CUDA one warp, <see cref="QuantizeQ8_0Kernel.QuantizeLane"/>). g, u and h are also written
/// in f32 (the buffers hold what the unfused ops leave; h may be the gate buffer). Same arithmetic as the unfused
/// kernels: the products as <see cref="MatVecQ8_0Kernel.KernelPairsDp4a"/>, silu as <see cref="SwiGluQuantizeKernel"/>.
/// Grid: (rows / outputs, n). <see cref="KernelNorm"/> also folds the preceding RMSNorm in (as <see cref="NormMatVecQ8_0Kernel"/>).
/// The spread form (<see cref="GateUpParams.Outputs"/> = warps per group &lt; 32): one output per warp, so the grid has as
/// many warps as outputs and every multiprocessor gets its share (TinyLlama's 5,632 outputs in 32-output groups were 176
/// groups on 132 multiprocessors, each warp taking four pairs in a row: 21.5 µs, H200 2026-11-26; 1,024-thread groups
/// of one pair a warp were slower still, 26.7 µs, at one group a multiprocessor). A block of h then spans 32 / outputs
/// groups: each group writes its h, counts itself done on the block's counter (the counters argument, zero between
/// launches) and the last to finish quantizes the block, with the fences of the flash-decoding merge
/// (<see cref="AttentionKernel"/>'s FlashChunk: release before the count, acquire after it), then resets the counter.
/// </summary>
public static class GateUpSwiGluKernel
{
    /// <summary>Outputs per group: one Q8_0 block of h.</summary>
    public const int Width = 32;

    /// <summary>The product of the already quantized input <paramref name="xq"/> [n, cols/4] int, <paramref name="xd"/> [n, cols/32] f32.</summary>
    /// <param name="wg">[rows, blocks * 17] ushort: gate, Q8_0 as in the file.</param>
    /// <param name="yg">[n, rows] f32: g.</param>
    /// <param name="yu">[n, rows] f32: u.</param>
    /// <param name="h">[n, rows] f32: silu(g) · u.</param>
    /// <param name="hq">[n, rows/4] int: h in Q8_0 (must not be xq).</param>
    /// <param name="hd">[n, rows/32] f32: its block scales.</param>
    /// <param name="counters">[n, rows/32] int: zero before and after a launch (the spread form's per-block counts).</param>
    public static void Kernel(ArrayView<ushort> wg, ArrayView<ushort> wu, ArrayView<float> yg, ArrayView<float> yu,
        ArrayView<float> h, ArrayView<int> hq, ArrayView<float> hd, ArrayView<int> xq, ArrayView<float> xd, ArrayView<int> counters, GateUpParams p) =>
        Body(wg, wu, yg, yu, h, hq, hd, xq, xd, Grid.IdxY, counters, p);

    /// <summary>
    /// The same with the RMSNorm of <paramref name="x"/> [n, cols] by <paramref name="norm"/> [cols] folded in: each group
    /// normalizes and quantizes its input row into shared memory first (<see cref="RmsNormKernel.NormQuantizeRow"/>); groups of
    /// grid X = 0 write the normalized rows to <paramref name="dst"/> [n, cols]. x, dst and the outputs must not overlap.
    /// </summary>
    public static void KernelNorm(ArrayView<float> x, ArrayView<float> norm, ArrayView<float> dst,
        ArrayView<ushort> wg, ArrayView<ushort> wu, ArrayView<float> yg, ArrayView<float> yu,
        ArrayView<float> h, ArrayView<int> hq, ArrayView<float> hd, ArrayView<int> counters, GateUpParams p)
    {
        var sq = SharedMemory.Allocate<int>(NormMatVecQ8_0Kernel.MaxCols / 4);
        var sd = SharedMemory.Allocate<float>(NormMatVecQ8_0Kernel.MaxCols / 32);
        RmsNormKernel.NormQuantizeRow(x, norm, dst, Grid.IdxX == 0, sq, sd, Grid.IdxY, p.Blocks * 32, p.Eps, p.Lanes != 0, p.NormThreads);
        Body(wg, wu, yg, yu, h, hq, hd, sq, sd, 0, counters, p);
    }

    private static void Body(ArrayView<ushort> wg, ArrayView<ushort> wu, ArrayView<float> yg, ArrayView<float> yu,
        ArrayView<float> h, ArrayView<int> hq, ArrayView<float> hd, ArrayView<int> xq, ArrayView<float> xd, int xRow,
        ArrayView<int> counters, GateUpParams p)
    {
        var hs = SharedMemory.Allocate<float>(Width); // [32] f32: this group's block of h (32-output form)
        var last = SharedMemory.Allocate<int>(1);
        int r = Grid.IdxY;
        int outputs = p.Outputs;
        int j0 = Grid.IdxX * outputs;
        int warps = Group.DimX / Warp.WarpSize;
        for (int k = Warp.WarpIdx; k < outputs; k += warps)
        {
            int j = j0 + k;
            var gu = p.Wide != 0
                ? MatVecQ8_0Kernel.RowDotPairWide(wg, wu, j, xq, xd, xRow, p.Blocks, xWide: false)
                : MatVecQ8_0Kernel.RowDotPair(wg, wu, j, xq, xd, xRow, p.Blocks, asm: true);
            float g = gu.A;
            float v = g / (1f + ILGPU.Algorithms.XMath.Exp(-g)) * gu.B;
            if (Warp.IsFirstLane)
            {
                long o = (long)r * p.Rows + j;
                yg[o] = g;
                yu[o] = gu.B;
                h[o] = v; // after g: h may be the gate buffer
                hs[k] = v;
            }
        }
        Group.Barrier();
        if (outputs == Width)
        {
            long first = (long)r * p.Rows + j0; // rows % 32 == 0: flat block numbering = per-row numbering
            QuantizeBlockOfH(hs, 0, first, hq, hd, p.Lanes);
            return;
        }

        // Spread form: count this group done on its block; the last of the block's groups quantizes it from h.
        int perBlock = Width / outputs;
        long cell = (long)r * (p.Rows / Width) + j0 / Width; // (row, block)
        if (Group.IdxX == 0)
        {
            MemoryFence.DeviceLevel(); // release: this group's h before the count
            bool isLast = Atomic.Add(ref counters[cell], 1) == perBlock - 1;
            if (isLast) MemoryFence.DeviceLevel(); // acquire: the other groups' h after their counts
            last[0] = isLast ? 1 : 0;
        }
        Group.Barrier();
        if (last[0] == 0) return; // uniform over the group
        QuantizeBlockOfH(h, cell * Width, cell * Width, hq, hd, p.Lanes);
        if (Group.IdxX == 0) counters[cell] = 0; // every group of the block has counted: ready for the next launch
    }

    /// <summary>Quantizes the 32 values of h at <paramref name="src"/> of <paramref name="from"/> as flat block first / 32 (CUDA: warp 0, a lane each).</summary>
    private static void QuantizeBlockOfH(ArrayView<float> from, long src, long first, ArrayView<int> hq, ArrayView<float> hd, int lanes)
    {
        if (lanes != 0 && Warp.WarpSize == Width)
        {
            if (Warp.WarpIdx == 0) QuantizeQ8_0Kernel.QuantizeLane(from[src + Warp.LaneIdx], first + Warp.LaneIdx, hq, hd);
        }
        else if (Group.IdxX == 0)
        {
            QuantizeQ8_0Kernel.QuantizeBlock(from, src, hq, hd, first / Width);
        }
    }
}
