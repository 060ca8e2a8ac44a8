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
public static class MatVecQ8_0Kernel
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

    private static void Body(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p, bool asm)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row < p.Rows0)
        {
            float s = RowDot(w0, row, xq, xd, r, p.Blocks, asm);
            if (Warp.IsFirstLane)
            {
                long o = (long)r * p.Rows0 + row;
                y0[o] = p.Accumulate != 0 ? y0[o] + s : s;
            }
        }
        else if (row < p.Rows0 + p.Rows1)
        {
            row -= p.Rows0;
            float s = RowDot(w1, row, xq, xd, r, p.Blocks, asm);
            if (Warp.IsFirstLane) y1[(long)r * p.Rows1 + row] = s;
        }
        else if (row < p.Rows0 + p.Rows1 + p.Rows2)
        {
            row -= p.Rows0 + p.Rows1;
            float s = RowDot(w2, row, xq, xd, r, p.Blocks, asm);
            if (Warp.IsFirstLane) y2[(long)r * p.Rows2 + row] = s;
        }
    }

    /// <summary>
    /// The whole warp's dot of weight row <paramref name="row"/> with input row <paramref name="r"/>.
    /// Each lane takes four quarter blocks per pass (a warp-width apart: each load instruction of the warp
    /// still reads 8 consecutive blocks) so that four items' loads are in flight before the arithmetic
    /// needs them; then pairs, then one.
    /// </summary>
    private static float RowDot(ArrayView<ushort> w, int row, ArrayView<int> xq, ArrayView<float> xd, int r, int blocks, bool asm)
    {
        long rowBase = (long)row * blocks * WeightTypes.Q8BlockUShorts;
        long xBase = (long)r * blocks;
        int items = blocks * 4; // quarter blocks
        int step = Warp.WarpSize;
        float sum = 0;
        int it = Warp.LaneIdx;
        for (; it + 3 * step < items; it += 4 * step)
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

    /// <summary>Quarter block <paramref name="it"/> of a row: 8 int8 weights · 8 int8 inputs, scaled by both block scales.</summary>
    private static float Item(ArrayView<ushort> w, long rowBase, ArrayView<int> xq, ArrayView<float> xd, long xBase, int it, bool asm)
    {
        int b = it >> 2;
        int part = it & 3;
        long at = rowBase + (long)b * WeightTypes.Q8BlockUShorts;
        long q = at + 1 + part * 4;
        int wa = w[q] | (w[q + 1] << 16);
        int wb = w[q + 2] | (w[q + 3] << 16);
        long xi = (xBase + b) * 8 + part * 2;
        int xa = xq[xi], xb = xq[xi + 1];
        ushort scale = w[at];
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
