using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

/// <summary>Shapes of a fused Q8_0 product of up to three weights sharing one quantized input.</summary>
public struct Q8MatParams
{
    /// <summary>Rows of targets 0, 1, 2 (0 for an absent target).</summary>
    public int Rows0, Rows1, Rows2;

    /// <summary>Q8_0 blocks per row (cols / 32).</summary>
    public int Blocks;

    /// <summary>1: add the product into target 0's output (<c>y0 += W0 · x</c>, the residual add fused); 0: overwrite.</summary>
    public int Accumulate;
}

/// <summary>
/// <c>y_t [n, rows_t] = x [n, cols] · W_tᵀ</c> for up to three Q8_0 weights at once (q, k and v, or gate
/// and up: one launch instead of three). One warp per output row; grid Y = the input row (token).
/// Each lane takes a quarter block (8 int8 = 4 ushorts of the file's bytes) at a time, so a warp of 32
/// reads 8 consecutive blocks (272 bytes) per step: coalesced. int8 × int8 products accumulate in int32
/// per quarter block and are scaled by <c>d_w · d_x</c>, as ggml_vec_dot_q8_0_q8_0.
/// </summary>
public static partial class MatVecQ8_0Kernel
{
    /// <param name="w0">[rows0, blocks * 17] ushort: Q8_0 blocks as in the file.</param>
    /// <param name="y0">[n, rows0] f32.</param>
    /// <param name="xq">[n, blocks * 8] int: quantized input (four int8 per int).</param>
    /// <param name="xd">[n, blocks] f32: input block scales.</param>
    public static void Kernel(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        Body(w0, w1, w2, y0, y1, y2, xq, xd, p, asm: false);

    /// <summary>
    /// The same product with each pair of 4-byte dot products as two PTX <c>dp4a</c> and the f16 weight scale
    /// converted by <c>cvt.f32.f16</c> (inline PTX: one instruction each where the portable code takes about
    /// twenty integer operations per <see cref="Reductions.Dot4"/> and per <see cref="Half16.ToFloat"/>), so that
    /// fewer instructions stand between the loads. On other accelerators <see cref="CudaAsm.IsSupported"/> is
    /// false and it computes exactly what <see cref="Kernel"/> does. A separate entry point, so that a driver
    /// that rejects the PTX loses only this variant: the backend checks it against <see cref="Kernel"/> on
    /// the device when it starts and keeps the portable one on any failure or difference.
    /// </summary>
    public static void KernelDp4a(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        Body(w0, w1, w2, y0, y1, y2, xq, xd, p, asm: true);

    /// <summary>Blocks each warp stages per pass: a multiple of every warp size (≤ 32) so that each lane sums the same items in the same order as <see cref="Kernel"/>; even, so that a chunk is whole ints.</summary>
    public const int StagedChunkBlocks = 64;

    /// <summary>Warps per group that get a shared-memory slice; further warps of a larger group take the per-lane path.</summary>
    public const int StagedMaxWarps = 8;

    /// <summary>Ints of one warp's slice: a chunk (64 × 34 bytes) plus one, read (and discarded) by the last quarter block's funnel shift.</summary>
    private const int StagedSliceInts = StagedChunkBlocks * WeightTypes.Q8BlockUShorts / 2 + 1;

    /// <summary>
    /// The same product as <see cref="KernelDp4a"/> with the weight row copied first, 64 blocks (2176 bytes) at a
    /// time, by the warp from global memory into its shared-memory slice with 32-bit loads (each load instruction
    /// of the warp reads 128 consecutive bytes; four per lane in flight), so that a row costs 17 loads per lane
    /// per 64 blocks where the per-lane path issues 5 16-bit loads per quarter block (40). The quarter blocks are
    /// then read from shared memory (8 weights at a 2-byte-aligned offset: three ints and a 64-bit shift) and
    /// summed in the same order as <see cref="Kernel"/>, so the result is the same bit for bit.
    /// Preconditions for the staged path: <c>Blocks</c> even (34 × blocks bytes per row keeps every row start
    /// 4-byte aligned) and the weight views starting 4-byte aligned (whole buffers, as the backend's weights);
    /// odd <c>Blocks</c>, and warps beyond <see cref="StagedMaxWarps"/> in a group, take <see cref="Kernel"/>'s
    /// per-lane path. Static shared memory: <see cref="StagedMaxWarps"/> × 545 ints = 17,440 bytes per group.
    /// Launched exactly as <see cref="Kernel"/> (one warp per output row, grid Y = input row).
    /// </summary>
    public static void KernelStaged(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p)
    {
        var shared = SharedMemory.Allocate<int>(StagedMaxWarps * StagedSliceInts);
        if ((p.Blocks & 1) != 0 || Warp.WarpIdx >= StagedMaxWarps)
        {
            Body(w0, w1, w2, y0, y1, y2, xq, xd, p, asm: true);
            return;
        }
        var slice = shared.SubView(Warp.WarpIdx * StagedSliceInts, StagedSliceInts);
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row < p.Rows0)
        {
            float s = RowDotStaged(w0, row, xq, xd, r, p.Blocks, slice);
            if (Warp.IsFirstLane)
            {
                long o = (long)r * p.Rows0 + row;
                y0[o] = p.Accumulate != 0 ? y0[o] + s : s;
            }
        }
        else if (row < p.Rows0 + p.Rows1)
        {
            row -= p.Rows0;
            float s = RowDotStaged(w1, row, xq, xd, r, p.Blocks, slice);
            if (Warp.IsFirstLane) y1[(long)r * p.Rows1 + row] = s;
        }
        else if (row < p.Rows0 + p.Rows1 + p.Rows2)
        {
            row -= p.Rows0 + p.Rows1;
            float s = RowDotStaged(w2, row, xq, xd, r, p.Blocks, slice);
            if (Warp.IsFirstLane) y2[(long)r * p.Rows2 + row] = s;
        }
    }

    /// <summary>
    /// <see cref="RowDot"/> with the row staged chunk by chunk in <paramref name="slice"/> ([545] int, this warp's).
    /// Every chunk but the last has 64 blocks = 256 items, a whole number of four-item passes for any warp size
    /// dividing 64, so each lane meets its items in <see cref="RowDot"/>'s order and grouping.
    /// </summary>
    private static float RowDotStaged(ArrayView<ushort> w, int row, ArrayView<int> xq, ArrayView<float> xd, int r, int blocks, ArrayView<int> slice)
    {
        var wi = w.Cast<int>();
        long rowInt = (long)row * blocks * WeightTypes.Q8BlockUShorts / 2; // blocks even: whole ints
        long xBase = (long)r * blocks;
        int step = Warp.WarpSize;
        int lane = Warp.LaneIdx;
        float sum = 0;
        for (int c0 = 0; c0 < blocks; c0 += StagedChunkBlocks)
        {
            int cb = Math.Min(StagedChunkBlocks, blocks - c0);
            int ints = cb * WeightTypes.Q8BlockUShorts / 2;
            long g = rowInt + (long)c0 * WeightTypes.Q8BlockUShorts / 2;
            Warp.Barrier(); // every lane is done reading the previous chunk
            int i = lane;
            for (; i + 3 * step < ints; i += 4 * step)
            {
                int a = wi[g + i], b = wi[g + i + step], c = wi[g + i + 2 * step], d = wi[g + i + 3 * step];
                slice[i] = a;
                slice[i + step] = b;
                slice[i + 2 * step] = c;
                slice[i + 3 * step] = d;
            }
            for (; i < ints; i += step) slice[i] = wi[g + i];
            Warp.Barrier(); // the chunk is in shared memory

            int items = (c0 + cb) * 4;
            int it = c0 * 4 + lane;
            for (; it + 3 * step < items; it += 4 * step)
            {
                float s0 = StagedItem(slice, c0, xq, xd, xBase, it);
                float s1 = StagedItem(slice, c0, xq, xd, xBase, it + step);
                float s2 = StagedItem(slice, c0, xq, xd, xBase, it + 2 * step);
                float s3 = StagedItem(slice, c0, xq, xd, xBase, it + 3 * step);
                sum += (s0 + s1) + (s2 + s3);
            }
            for (; it + step < items; it += 2 * step)
                sum += StagedItem(slice, c0, xq, xd, xBase, it) + StagedItem(slice, c0, xq, xd, xBase, it + step);
            if (it < items) sum += StagedItem(slice, c0, xq, xd, xBase, it);
        }
        return Reductions.WarpSum(sum);
    }

    /// <summary>Quarter block <paramref name="it"/> of the row read from the staged chunk that starts at block <paramref name="c0"/>.</summary>
    private static float StagedItem(ArrayView<int> slice, int c0, ArrayView<int> xq, ArrayView<float> xd, long xBase, int it)
    {
        int b = it >> 2;
        int part = it & 3;
        int at = (b - c0) * (WeightTypes.Q8BlockUShorts * 2); // byte offset of the block in the chunk (even)
        int o = at + 2 + part * 8;                             // its 8 weights: 2-byte aligned
        int k = o >> 2;
        int shift = (o & 2) * 8;                               // 0 or 16 bits
        ulong lo = (uint)slice[k] | ((ulong)(uint)slice[k + 1] << 32);
        ulong hi = (uint)slice[k + 1] | ((ulong)(uint)slice[k + 2] << 32);
        int wa = (int)(uint)(lo >> shift);
        int wb = (int)(uint)(hi >> shift);
        ushort scale = (ushort)((uint)slice[at >> 2] >> ((at & 2) * 8));
        return Scaled(wa, wb, xq, xd, xBase, b, part, scale, asm: true);
    }

    /// <summary>
    /// As <see cref="Kernel"/> with two quarter blocks in flight per lane instead of four (the loop of the
    /// 2026-11-26 02:39 H200 run, 41 % of copy bandwidth at 32000×2048, where four in flight measured 26–28 %):
    /// fewer registers per thread, more warps resident. A candidate of the backend's timed selection.
    /// </summary>
    public static void KernelPairs(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        Body(w0, w1, w2, y0, y1, y2, xq, xd, p, asm: false, four: false);

    /// <summary><see cref="KernelPairs"/> with the dp4a and cvt.f32.f16 inline PTX of <see cref="KernelDp4a"/>.</summary>
    public static void KernelPairsDp4a(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        Body(w0, w1, w2, y0, y1, y2, xq, xd, p, asm: true, four: false);

    private static void Body(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p, bool asm, bool four = true) =>
        Rows(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, asm, four);

    /// <summary>
    /// This group's rows (one per warp) of output row <c>Grid.IdxY</c>, dotted with input row <paramref name="xRow"/> of
    /// xq/xd: <c>Grid.IdxY</c> for the global quantized input, 0 for a fused producer's row quantized into shared memory
    /// (<see cref="NormMatVecQ8_0Kernel"/>).
    /// </summary>
    internal static void Rows(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p, int xRow, bool asm, bool four)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row < p.Rows0)
        {
            float s = RowDot(w0, row, xq, xd, xRow, p.Blocks, asm, four);
            if (Warp.IsFirstLane)
            {
                long o = (long)r * p.Rows0 + row;
                y0[o] = p.Accumulate != 0 ? y0[o] + s : s;
            }
        }
        else if (row < p.Rows0 + p.Rows1)
        {
            row -= p.Rows0;
            float s = RowDot(w1, row, xq, xd, xRow, p.Blocks, asm, four);
            if (Warp.IsFirstLane) y1[(long)r * p.Rows1 + row] = s;
        }
        else if (row < p.Rows0 + p.Rows1 + p.Rows2)
        {
            row -= p.Rows0 + p.Rows1;
            float s = RowDot(w2, row, xq, xd, xRow, p.Blocks, asm, four);
            if (Warp.IsFirstLane) y2[(long)r * p.Rows2 + row] = s;
        }
    }

    /// <summary>
    /// The whole warp's dot of weight row <paramref name="row"/> with input row <paramref name="r"/>.
    /// Each lane takes four quarter blocks per pass (a warp-width apart: each load instruction of the warp
    /// still reads 8 consecutive blocks) so that four items' loads are in flight before the arithmetic
    /// needs them; then pairs, then one.
    /// </summary>
    internal static float RowDot(ArrayView<ushort> w, int row, ArrayView<int> xq, ArrayView<float> xd, int r, int blocks, bool asm, bool four)
    {
        long rowBase = (long)row * blocks * WeightTypes.Q8BlockUShorts;
        long xBase = (long)r * blocks;
        int items = blocks * 4; // quarter blocks
        int step = Warp.WarpSize;
        float sum = 0;
        int it = Warp.LaneIdx;
        for (; four && it + 3 * step < items; it += 4 * step)
        {
            float s0 = Item(w, rowBase, xq, xd, xBase, it, asm);
            float s1 = Item(w, rowBase, xq, xd, xBase, it + step, asm);
            float s2 = Item(w, rowBase, xq, xd, xBase, it + 2 * step, asm);
            float s3 = Item(w, rowBase, xq, xd, xBase, it + 3 * step, asm);
            sum += (s0 + s1) + (s2 + s3);
        }
        for (; it + step < items; it += 2 * step)
            sum += Item(w, rowBase, xq, xd, xBase, it, asm) + Item(w, rowBase, xq, xd, xBase, it + step, asm);
        if (it < items) sum += Item(w, rowBase, xq, xd, xBase, it, asm);
        return Reductions.WarpSum(sum);
    }

    /// <summary>Two warp sums of <see cref="RowDotPair"/>: row <c>row</c> of the first and of the second weight.</summary>
    internal struct Pair
    {
        public float A, B;
    }

    /// <summary>
    /// Row <paramref name="row"/> of <paramref name="wa"/> and of <paramref name="wb"/> (gate and up) dotted with input row
    /// <paramref name="r"/>, interleaved so that four quarter blocks' loads (two per row) are in flight per lane; each
    /// row's items are summed in <see cref="RowDot"/>'s order with <c>four: false</c>, so each result equals that one's.
    /// </summary>
    internal static Pair RowDotPair(ArrayView<ushort> wa, ArrayView<ushort> wb, int row, ArrayView<int> xq, ArrayView<float> xd, int r, int blocks, bool asm)
    {
        long rowBase = (long)row * blocks * WeightTypes.Q8BlockUShorts;
        long xBase = (long)r * blocks;
        int items = blocks * 4; // quarter blocks
        int step = Warp.WarpSize;
        float sa = 0, sb = 0;
        int it = Warp.LaneIdx;
        for (; it + step < items; it += 2 * step)
        {
            float a0 = Item(wa, rowBase, xq, xd, xBase, it, asm);
            float a1 = Item(wa, rowBase, xq, xd, xBase, it + step, asm);
            float b0 = Item(wb, rowBase, xq, xd, xBase, it, asm);
            float b1 = Item(wb, rowBase, xq, xd, xBase, it + step, asm);
            sa += a0 + a1;
            sb += b0 + b1;
        }
        if (it < items)
        {
            sa += Item(wa, rowBase, xq, xd, xBase, it, asm);
            sb += Item(wb, rowBase, xq, xd, xBase, it, asm);
        }
        return new Pair { A = Reductions.WarpSum(sa), B = Reductions.WarpSum(sb) };
    }

    /// <summary>Quarter block <paramref name="it"/> of a row: 8 int8 weights · 8 int8 inputs, scaled by both block scales.</summary>
    private static float Item(ArrayView<ushort> w, long rowBase, ArrayView<int> xq, ArrayView<float> xd, long xBase, int it, bool asm)
    {
        int b = it >> 2;
        int part = it & 3;
        long at = rowBase + (long)b * WeightTypes.Q8BlockUShorts;
        long q = at + 1 + part * 4;
        int wa = w[q] | (w[q + 1] << 16);
        int wb = w[q + 2] | (w[q + 3] << 16);
        ushort scale = w[at];
        return Scaled(wa, wb, xq, xd, xBase, b, part, scale, asm);
    }

    /// <summary>The arithmetic of one quarter block once its 8 weights (<paramref name="wa"/>, <paramref name="wb"/>) and f16 scale are loaded.</summary>
    private static float Scaled(int wa, int wb, ArrayView<int> xq, ArrayView<float> xd, long xBase, int b, int part, ushort scale, bool asm)
    {
        long xi = (xBase + b) * 8 + part * 2;
        int xa = xq[xi], xb = xq[xi + 1];
        int acc;
        float dw;
        if (asm && CudaAsm.IsSupported)
        {
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int half, wa, xa, 0);
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out acc, wb, xb, half);
            CudaAsm.Emit("cvt.f32.f16 %0, %1;", out dw, scale);
        }
        else
        {
            acc = Reductions.Dot4(wa, xa) + Reductions.Dot4(wb, xb);
            dw = Half16.ToFloat(scale);
        }
        return acc * (dw * xd[xBase + b]);
    }
}
