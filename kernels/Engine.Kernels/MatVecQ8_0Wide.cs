using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

// The "wide" matrix-vector variants: the same one-warp-per-row products as KernelPairsDp4a, with the weights read by
// 8-byte-aligned 64-bit loads instead of 16-bit ones.
//
// Why: the per-lane path reads a quarter block (8 int8 at a 2-byte-aligned offset) as four 16-bit loads plus the f16
// scale, and the input as two 32-bit loads: 8 load instructions per 8 weights. Each of those warp-wide loads touches
// the ~272 bytes the warp's 32 quarter blocks span (3-4 cache lines, so 3-4 L1 wavefronts) for at most 64-128 useful
// bytes. Counting ~22 wavefronts per 272 weight bytes and one wavefront per SM per clock, an H200 (132 SMs, ~1.98 GHz)
// tops out near 3.2 TB/s whatever DRAM does, and 2026-11-26's pairs + dp4a measured 2.54 TB/s (60 % of copy). Here a
// quarter block takes two aligned 64-bit loads that cover it (a funnel shift picks its 8 bytes) and one 64-bit load of
// the input: 5 loads per 8 weights (~12 wavefronts per 272 bytes), fewer address registers, so more items can be in
// flight per lane for the same registers. The half-block form (16 weights per lane: three 64-bit loads, input in two)
// halves the instructions per byte again.
//
// Alignment (PTX faults on a misaligned 64-bit load): a row starts at row * blocks * 34 bytes, a multiple of 8 for every
// row exactly when blocks % 4 == 0 (136 = 8 * 17), given a weight view that starts 8-byte aligned (the backend's weights
// are whole buffers: 256-byte aligned on CUDA). Then every 64-bit word read lies inside the row: the first word is
// floor8(q - 2) ≥ the block's scale ≥ the row start, the last ends at ceil8(end of the item) ≤ the row end (8-aligned).
// Other block counts (576 columns = 18 blocks: rows only 4-byte aligned) take the pairs path, per call.
// The input xq [n, blocks * 8] int is 8-byte aligned per block (32 bytes per block) when its view is (the backend's
// quantized-input buffer); a fused kernel that quantizes into shared memory passes xWide: false (two 32-bit loads).
public static partial class MatVecQ8_0Kernel
{
    /// <summary>
    /// <see cref="KernelPairsDp4a"/> with each quarter block read by two 8-byte-aligned 64-bit loads (and the input by one):
    /// 5 loads per 8 weights instead of 8. Sums the same int32 quarter-block dots in the same order as
    /// <see cref="KernelPairsDp4a"/>, so the result is the same bit for bit. Blocks not a multiple of 4: exactly
    /// <see cref="KernelPairsDp4a"/>. Launched as <see cref="Kernel"/> (one warp per output row, grid Y = input row).
    /// </summary>
    public static void KernelWide(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: false, four: false, xWide: true);

    /// <summary>
    /// <see cref="KernelWide"/> with four quarter blocks in flight per lane (the 64-bit loads need fewer registers per item
    /// than the 16-bit ones, where four in flight measured slower than two). Same sums as <see cref="KernelDp4a"/>, bit for bit;
    /// blocks not a multiple of 4: exactly <see cref="KernelDp4a"/>.
    /// </summary>
    public static void KernelWideFour(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: false, four: true, xWide: true);

    /// <summary>
    /// Each lane takes half blocks (16 int8: three 8-byte-aligned 64-bit loads of the weights, two of the input, four dp4a)
    /// two at a time: a warp's load instruction covers 16 blocks (544 bytes), 7 loads per 16 weights. Sums int32 half-block
    /// dots, so it differs from <see cref="Kernel"/> by f32 rounding only. Blocks not a multiple of 4: <see cref="KernelPairsDp4a"/>.
    /// </summary>
    public static void KernelWideHalves(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: true, four: false, xWide: true);

    /// <summary>
    /// <see cref="KernelWideHalves"/> software-pipelined: each lane issues the next pass's two half blocks (48 weight bytes,
    /// 32 input bytes) before the arithmetic of this pass, so a warp always has loads in flight (where the other forms
    /// issue, wait, compute): for the decode shapes whose grids fill an H200 a quarter (2048 rows = 16 warps per SM), where
    /// per-warp latency chains rather than the SMs' load slots bound the time. Same sums as <see cref="KernelWideHalves"/>.
    /// </summary>
    public static void KernelWideHalvesPipelined(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: true, four: false, xWide: true, pipelined: true);

    /// <summary>
    /// <see cref="KernelWideHalvesPipelined"/> with four half blocks a pass (the next four in flight while this pass computes:
    /// up to 192 weight bytes per lane). More registers per thread, so fewer warps fit an SM; for grids too small to fill the
    /// SMs anyway (2048 rows: ~16 warps per H200 SM of 64), bytes in flight per lane are what is left to raise.
    /// Differs from <see cref="KernelWideHalves"/> by f32 summation order only.
    /// </summary>
    public static void KernelWideHalvesDeep(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: true, four: true, xWide: true, pipelined: true);

    /// <summary>
    /// <see cref="Rows"/> with the wide row loop (<see cref="RowDotWide"/>): this group's rows (one per warp) of output row
    /// <c>Grid.IdxY</c>, dotted with input row <paramref name="xRow"/> of xq/xd. For a fused kernel: pass
    /// <paramref name="xWide"/> false when xq is in shared memory (its 8-byte alignment is not guaranteed). The weight
    /// views must start 8-byte aligned (whole buffers).
    /// </summary>
    internal static void RowsWide(
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2,
        ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p, int xRow, bool halves, bool four, bool xWide, bool pipelined = false)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row < p.Rows0)
        {
            float s = RowDotWide(w0, row, xq, xd, xRow, p.Blocks, halves, four, xWide, pipelined);
            if (Warp.IsFirstLane)
            {
                long o = (long)r * p.Rows0 + row;
                y0[o] = p.Accumulate != 0 ? y0[o] + s : s;
            }
        }
        else if (row < p.Rows0 + p.Rows1)
        {
            row -= p.Rows0;
            float s = RowDotWide(w1, row, xq, xd, xRow, p.Blocks, halves, four, xWide, pipelined);
            if (Warp.IsFirstLane) y1[(long)r * p.Rows1 + row] = s;
        }
        else if (row < p.Rows0 + p.Rows1 + p.Rows2)
        {
            row -= p.Rows0 + p.Rows1;
            float s = RowDotWide(w2, row, xq, xd, xRow, p.Blocks, halves, four, xWide, pipelined);
            if (Warp.IsFirstLane) y2[(long)r * p.Rows2 + row] = s;
        }
    }

    /// <summary>
    /// The whole warp's dot of weight row <paramref name="row"/> with input row <paramref name="r"/>, weights read by aligned
    /// 64-bit loads when <paramref name="blocks"/> % 4 == 0 (else <see cref="RowDot"/> with dp4a and <paramref name="four"/>).
    /// QuarterBlock blocks: <see cref="RowDot"/>'s items, order and grouping (<paramref name="four"/> as there);
    /// <paramref name="halves"/>: half blocks, two per pass (four with <paramref name="four"/> and <paramref name="pipelined"/>),
    /// and with <paramref name="pipelined"/> the next pass's loads issued before this pass's arithmetic (two a pass: same sums
    /// as without). Fallback (blocks % 4 != 0): <see cref="RowDot"/> with dp4a, four in flight only for the quarter form with four. Every pass issues all its loads before any arithmetic uses them, in program
    /// order: ILGPU emits generic loads and per-item branches that ptxas need not move loads across.
    /// </summary>
    internal static float RowDotWide(ArrayView<ushort> w, int row, ArrayView<int> xq, ArrayView<float> xd, int r, int blocks,
        bool halves, bool four, bool xWide, bool pipelined = false)
    {
        if ((blocks & 3) != 0) return RowDot(w, row, xq, xd, r, blocks, asm: true, four && !halves);
        var w64 = w.Cast<ulong>();                           // [rows * blocks * 34 / 8] ulong: whole (blocks % 4 == 0)
        long rowByte = (long)row * blocks * BlockBytes;      // multiple of 8
        long xBase = (long)r * blocks;
        int step = Warp.WarpSize;
        float sum = 0;
        int it = Warp.LaneIdx;
        if (halves)
        {
            int halfItems = blocks * 2;
            if (pipelined && four)
            {
                // Four half blocks a pass, the next pass's four in flight meanwhile: up to 8 × 24 weight bytes per lane.
                int last = halfItems - 1;
                var a = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it, last), xWide);
                var b = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + step, last), xWide);
                var c = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 2 * step, last), xWide);
                var e = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 3 * step, last), xWide);
                for (; it < halfItems; it += 4 * step)
                {
                    var na = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 4 * step, last), xWide);
                    var nb = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 5 * step, last), xWide);
                    var nc = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 6 * step, last), xWide);
                    var ne = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 7 * step, last), xWide);
                    float s0 = DotHalf(a);
                    float s1 = it + step < halfItems ? DotHalf(b) : 0f;
                    float s2 = it + 2 * step < halfItems ? DotHalf(c) : 0f;
                    float s3 = it + 3 * step < halfItems ? DotHalf(e) : 0f;
                    sum += (s0 + s1) + (s2 + s3);
                    a = na;
                    b = nb;
                    c = nc;
                    e = ne;
                }
                return Reductions.WarpSum(sum);
            }
            if (pipelined)
            {
                // Loads of the pass after this one are in flight while this pass computes; past the end they re-read the
                // row's last half block (valid addresses, results unused).
                int last = halfItems - 1;
                var a = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it, last), xWide);
                var b = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + step, last), xWide);
                for (; it < halfItems; it += 2 * step)
                {
                    var na = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 2 * step, last), xWide);
                    var nb = LoadHalf(w, w64, rowByte, xq, xd, xBase, Math.Min(it + 3 * step, last), xWide);
                    float sa = DotHalf(a);
                    float sb = it + step < halfItems ? DotHalf(b) : 0f;
                    sum += sa + sb;
                    a = na;
                    b = nb;
                }
                return Reductions.WarpSum(sum);
            }
            for (; it + step < halfItems; it += 2 * step)
            {
                var a = LoadHalf(w, w64, rowByte, xq, xd, xBase, it, xWide);
                var b = LoadHalf(w, w64, rowByte, xq, xd, xBase, it + step, xWide);
                sum += DotHalf(a) + DotHalf(b);
            }
            if (it < halfItems) sum += DotHalf(LoadHalf(w, w64, rowByte, xq, xd, xBase, it, xWide));
            return Reductions.WarpSum(sum);
        }
        int items = blocks * 4; // quarter blocks
        for (; four && it + 3 * step < items; it += 4 * step)
        {
            var q0 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it, xWide);
            var q1 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it + step, xWide);
            var q2 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it + 2 * step, xWide);
            var q3 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it + 3 * step, xWide);
            float s0 = DotQuarter(q0), s1 = DotQuarter(q1), s2 = DotQuarter(q2), s3 = DotQuarter(q3);
            sum += (s0 + s1) + (s2 + s3);
        }
        for (; it + step < items; it += 2 * step)
        {
            var q0 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it, xWide);
            var q1 = LoadQuarter(w, w64, rowByte, xq, xd, xBase, it + step, xWide);
            sum += DotQuarter(q0) + DotQuarter(q1);
        }
        if (it < items) sum += DotQuarter(LoadQuarter(w, w64, rowByte, xq, xd, xBase, it, xWide));
        return Reductions.WarpSum(sum);
    }

    /// <summary>
    /// <see cref="RowDotPair"/> (gate and up row <paramref name="row"/>, for <see cref="GateUpSwiGluKernel"/>) with the weights
    /// read by aligned 64-bit loads when <paramref name="blocks"/> % 4 == 0: each pass issues the loads of two quarter blocks of
    /// each row (four in flight) before any arithmetic, and sums each row's items in <see cref="RowDotPair"/>'s order, so each
    /// result equals that one's bit for bit. Other block counts: <see cref="RowDotPair"/> with dp4a. <paramref name="xWide"/>:
    /// false when xq is in shared memory (the norm-folded form), as for <see cref="RowsWide"/>.
    /// </summary>
    internal static Pair RowDotPairWide(ArrayView<ushort> wa, ArrayView<ushort> wb, int row, ArrayView<int> xq, ArrayView<float> xd,
        int r, int blocks, bool xWide)
    {
        if ((blocks & 3) != 0) return RowDotPair(wa, wb, row, xq, xd, r, blocks, asm: true);
        var wa64 = wa.Cast<ulong>();
        var wb64 = wb.Cast<ulong>();
        long rowByte = (long)row * blocks * BlockBytes;
        long xBase = (long)r * blocks;
        int items = blocks * 4;
        int step = Warp.WarpSize;
        float sa = 0, sb = 0;
        int it = Warp.LaneIdx;
        for (; it + step < items; it += 2 * step)
        {
            var a0 = LoadQuarter(wa, wa64, rowByte, xq, xd, xBase, it, xWide);
            var a1 = LoadQuarter(wa, wa64, rowByte, xq, xd, xBase, it + step, xWide);
            var b0 = LoadQuarter(wb, wb64, rowByte, xq, xd, xBase, it, xWide);
            var b1 = LoadQuarter(wb, wb64, rowByte, xq, xd, xBase, it + step, xWide);
            sa += DotQuarter(a0) + DotQuarter(a1);
            sb += DotQuarter(b0) + DotQuarter(b1);
        }
        if (it < items)
        {
            var a0 = LoadQuarter(wa, wa64, rowByte, xq, xd, xBase, it, xWide);
            var b0 = LoadQuarter(wb, wb64, rowByte, xq, xd, xBase, it, xWide);
            sa += DotQuarter(a0);
            sb += DotQuarter(b0);
        }
        return new Pair { A = Reductions.WarpSum(sa), B = Reductions.WarpSum(sb) };
    }

    /// <summary>Bytes of a Q8_0 block: f16 scale + 32 int8.</summary>
    private const int BlockBytes = WeightTypes.Q8BlockUShorts * 2;

    /// <summary>A quarter block's loads: the two aligned words holding its 8 weights (from byte <see cref="D"/> of <see cref="Lo"/>), its scale, 8 inputs and their scale.</summary>
    private struct QuarterBlock
    {
        public ulong Lo, Hi;
        public long X;
        public float Xd;
        public int D;
        public ushort Scale;
    }

    /// <summary>
    /// Loads quarter block <paramref name="it"/> of the row at byte <paramref name="rowByte"/>: its 8 weights start at byte q
    /// (even), inside the two aligned words from floor8(q - 2), which never end past ceil8(q + 8), so never past the row.
    /// </summary>
    private static QuarterBlock LoadQuarter(ArrayView<ushort> w, ArrayView<ulong> w64, long rowByte, ArrayView<int> xq, ArrayView<float> xd,
        long xBase, int it, bool xWide)
    {
        int b = it >> 2;
        int part = it & 3;
        long s = rowByte + (long)b * BlockBytes; // the block's f16 scale
        long q = s + 2 + part * 8;
        long k = (q - 2) >> 3;
        long xi = (xBase + b) * 8 + part * 2;    // even: an 8-byte-aligned pair of ints
        var r = new QuarterBlock
        {
            Lo = w64[k],
            Hi = w64[k + 1],
            Scale = w[s >> 1],
            D = (int)(q - (k << 3)),             // 2, 4, 6 or 8
            Xd = xd[xBase + b],
        };
        r.X = xWide ? xq.Cast<long>()[xi >> 1] : (uint)xq[xi] | ((long)xq[xi + 1] << 32);
        return r;
    }

    /// <summary><see cref="Scaled"/>'s arithmetic on a loaded quarter block (the same operations, so the same bits).</summary>
    private static float DotQuarter(QuarterBlock q)
    {
        ulong v = Funnel(q.Lo, q.Hi, q.D);
        int wa = (int)v, wb = (int)(v >> 32);
        int xa = (int)q.X, xb = (int)(q.X >> 32);
        int acc;
        float dw;
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int half, wa, xa, 0);
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out acc, wb, xb, half);
            CudaAsm.Emit("cvt.f32.f16 %0, %1;", out dw, q.Scale);
        }
        else
        {
            acc = Reductions.Dot4(wa, xa) + Reductions.Dot4(wb, xb);
            dw = Half16.ToFloat(q.Scale);
        }
        return acc * (dw * q.Xd);
    }

    /// <summary>A half block's loads: three aligned words holding its 16 weights (from byte <see cref="D"/> of <see cref="A0"/>), its scale, 16 inputs and their scale.</summary>
    private struct HalfBlock
    {
        public ulong A0, A1, A2;
        public long X0, X1;
        public float Xd;
        public int D;
        public ushort Scale;
    }

    /// <summary>
    /// Loads half block <paramref name="it"/> (16 weights from byte q = scale + 2 + 16·h): three aligned words from floor8(q - 2),
    /// ending at ceil8(q + 16) at most; the input's 16 bytes in two 64-bit loads (32-byte blocks: 16-byte aligned halves).
    /// </summary>
    private static HalfBlock LoadHalf(ArrayView<ushort> w, ArrayView<ulong> w64, long rowByte, ArrayView<int> xq, ArrayView<float> xd,
        long xBase, int it, bool xWide)
    {
        int b = it >> 1;
        int h = it & 1;
        long s = rowByte + (long)b * BlockBytes;
        long q = s + 2 + h * 16;
        long k = (q - 2) >> 3;
        long xi = (xBase + b) * 8 + h * 4;       // multiple of 4: a 16-byte-aligned quad of ints
        var r = new HalfBlock
        {
            A0 = w64[k],
            A1 = w64[k + 1],
            A2 = w64[k + 2],
            Scale = w[s >> 1],
            D = (int)(q - (k << 3)),             // 2, 4, 6 or 8
            Xd = xd[xBase + b],
        };
        if (xWide)
        {
            var x64 = xq.Cast<long>();
            r.X0 = x64[xi >> 1];
            r.X1 = x64[(xi >> 1) + 1];
        }
        else
        {
            r.X0 = (uint)xq[xi] | ((long)xq[xi + 1] << 32);
            r.X1 = (uint)xq[xi + 2] | ((long)xq[xi + 3] << 32);
        }
        return r;
    }

    /// <summary>int32 dot of a loaded half block (four dp4a on CUDA), scaled by both block scales.</summary>
    private static float DotHalf(HalfBlock q)
    {
        ulong v0 = Funnel(q.A0, q.A1, q.D);
        ulong v1 = Funnel(q.A1, q.A2, q.D);
        int x0 = (int)q.X0, x1 = (int)(q.X0 >> 32), x2 = (int)q.X1, x3 = (int)(q.X1 >> 32);
        int acc;
        float dw;
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int a, (int)v0, x0, 0);
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int ab, (int)(v0 >> 32), x1, a);
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int abc, (int)v1, x2, ab);
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out acc, (int)(v1 >> 32), x3, abc);
            CudaAsm.Emit("cvt.f32.f16 %0, %1;", out dw, q.Scale);
        }
        else
        {
            acc = Reductions.Dot4((int)v0, x0) + Reductions.Dot4((int)(v0 >> 32), x1)
                + Reductions.Dot4((int)v1, x2) + Reductions.Dot4((int)(v1 >> 32), x3);
            dw = Half16.ToFloat(q.Scale);
        }
        return acc * (dw * q.Xd);
    }

    /// <summary>
    /// The 8 bytes that start <paramref name="d"/> (2, 4, 6 or 8) bytes into the 16 little-endian bytes <paramref name="lo"/>,
    /// <paramref name="hi"/>. Branch-free (d differs between the lanes of a warp): every shift count stays in 8..56 or 0..48,
    /// so d = 8 gives lo shifted right by 56 then 8 (0), or hi shifted left by 0: hi, with no shift by 64 (which C# masks to 0).
    /// </summary>
    private static ulong Funnel(ulong lo, ulong hi, int d) =>
        ((lo >> (d * 8 - 8)) >> 8) | (hi << (64 - d * 8));
}
