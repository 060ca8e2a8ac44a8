using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Gguf;

namespace Engine.Cpu.Kernels;

/// <summary>
/// Register-tiled f32 products for batches (<c>n ≥ </c><see cref="MinRows"/>: prompts, encoder batches) against
/// F32/F16/BF16 weights. The per-row path (<see cref="FloatKernels.MatRows"/>) forms one dot product at a time, so
/// every FMA needs two loads and every output a horizontal sum; here a 4 × 4 tile (four activation rows by four
/// weight rows) keeps 16 accumulators in registers, so each step loads 8 vectors for 16 FMAs.
/// <para>
/// Loop order, for a chunk of weight rows <c>[r0, r1)</c>: the chunk (widened to f32 once if F16/BF16) stays in
/// L2 while tiles of four activation rows (at most 4 · cols floats, in L1) sweep across it, so the activations
/// are read from memory once per chunk rather than once per four weight rows.
/// </para>
/// Summation order differs from the reference (8 lanes, FMA, then a horizontal sum): the same bound as the
/// per-row vector path applies.
/// </summary>
internal static unsafe class FloatTileKernels
{
    /// <summary>Batches at least this tall take the tiled path (a full tile of activation rows).</summary>
    public const int MinRows = 4;

    /// <summary>Floats of scratch <see cref="MatRows"/> needs for a chunk of <paramref name="chunkRows"/> rows.</summary>
    public static long ScratchFloats(GgmlType type, int chunkRows, int cols) => type == GgmlType.F32 ? 0 : (long)chunkRows * cols;

    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for weight rows <c>o in [r0, r1)</c> and all <c>j in [0, n)</c>;
    /// x is <c>[n, cols] f32</c>. <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats for
    /// <c>r1 − r0</c> rows (F16/BF16 rows are widened there).
    /// <para>
    /// <paramref name="prefetch"/> (may be null): <paramref name="prefetchBytes"/> bytes the caller reads next (the weights
    /// of its next chunk), requested into L2 a few cache lines after each tile, so that a chunk's arithmetic overlaps the
    /// next chunk's trip from DRAM instead of the two alternating (a decode step streams every weight from DRAM).
    /// </para>
    /// </summary>
    public static void MatRows(GgmlType type, byte* w, long rowBytes, int r0, int r1,
                               float* x, int cols, int n, float* y, int yStride, float* scratch,
                               byte* prefetch = null, long prefetchBytes = 0)
    {
        int rows = r1 - r0;
        float* wf;       // [rows, wStride] f32: the chunk's weight rows
        long wStride;
        if (type == GgmlType.F32)
        {
            wf = (float*)(w + r0 * rowBytes);
            wStride = rowBytes / sizeof(float);
        }
        else
        {
            for (int r = 0; r < rows; r++) FloatKernels.DecodeRow(type, w + (r0 + r) * rowBytes, scratch + (long)r * cols, cols);
            wf = scratch;
            wStride = cols;
        }

        // Prefetch quota per tile: the range's cache lines spread over the tiles below.
        byte* pf = prefetch, pfEnd = prefetch == null ? null : prefetch + prefetchBytes;
        long tiles = (long)((n + 3) / 4) * ((rows + 3) / 4);
        int linesPerTile = prefetch == null ? 0 : (int)Math.Min(64, (prefetchBytes / 64 + tiles - 1) / Math.Max(1, tiles) + 1);

        int j = 0;
        for (; j + 4 <= n; j += 4)
        {
            float* xj = x + (long)j * cols;
            float* yj = y + (long)j * yStride + r0;
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                Tile4x4(wf + r * wStride, wStride, xj, cols, yj + r, yStride);
                for (int i = 0; i < linesPerTile && pf < pfEnd; i++, pf += 64) Sse.Prefetch1(pf);
            }
            for (; r < rows; r++)
                for (int i = 0; i < 4; i++) yj[i * (long)yStride + r] = FloatKernels.Dot(wf + r * wStride, xj + (long)i * cols, cols);
        }
        for (; j < n; j++)
        {
            float* xj = x + (long)j * cols;
            float* yj = y + (long)j * yStride + r0;
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                Tile1x4(wf + r * wStride, wStride, xj, cols, yj + r);
                for (int i = 0; i < linesPerTile && pf < pfEnd; i++, pf += 64) Sse.Prefetch1(pf);
            }
            for (; r < rows; r++) yj[r] = FloatKernels.Dot(wf + r * wStride, xj, cols);
        }
    }

    /// <summary>
    /// <c>y[i * yStride + k] = w[k] · x[i]</c> for i, k in [0, 4): four weight rows (stride <paramref name="ws"/>)
    /// by four activation rows (stride <paramref name="cols"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4(float* w, long ws, float* x, int cols, float* y, long yStride)
    {
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        float* x0 = x, x1 = x + cols, x2 = x + 2 * cols, x3 = x + 3 * cols;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default, a33 = default;
        int c = 0;
        for (; c + 8 <= cols; c += 8)
        {
            var v0 = Vector256.Load(w0 + c);
            var v1 = Vector256.Load(w1 + c);
            var v2 = Vector256.Load(w2 + c);
            var v3 = Vector256.Load(w3 + c);
            var u = Vector256.Load(x0 + c);
            a00 = Vector256.MultiplyAddEstimate(v0, u, a00);
            a01 = Vector256.MultiplyAddEstimate(v1, u, a01);
            a02 = Vector256.MultiplyAddEstimate(v2, u, a02);
            a03 = Vector256.MultiplyAddEstimate(v3, u, a03);
            u = Vector256.Load(x1 + c);
            a10 = Vector256.MultiplyAddEstimate(v0, u, a10);
            a11 = Vector256.MultiplyAddEstimate(v1, u, a11);
            a12 = Vector256.MultiplyAddEstimate(v2, u, a12);
            a13 = Vector256.MultiplyAddEstimate(v3, u, a13);
            u = Vector256.Load(x2 + c);
            a20 = Vector256.MultiplyAddEstimate(v0, u, a20);
            a21 = Vector256.MultiplyAddEstimate(v1, u, a21);
            a22 = Vector256.MultiplyAddEstimate(v2, u, a22);
            a23 = Vector256.MultiplyAddEstimate(v3, u, a23);
            u = Vector256.Load(x3 + c);
            a30 = Vector256.MultiplyAddEstimate(v0, u, a30);
            a31 = Vector256.MultiplyAddEstimate(v1, u, a31);
            a32 = Vector256.MultiplyAddEstimate(v2, u, a32);
            a33 = Vector256.MultiplyAddEstimate(v3, u, a33);
        }
        y[0] = Vector256.Sum(a00) + Tail(w0, x0, c, cols);
        y[1] = Vector256.Sum(a01) + Tail(w1, x0, c, cols);
        y[2] = Vector256.Sum(a02) + Tail(w2, x0, c, cols);
        y[3] = Vector256.Sum(a03) + Tail(w3, x0, c, cols);
        float* y1 = y + yStride;
        y1[0] = Vector256.Sum(a10) + Tail(w0, x1, c, cols);
        y1[1] = Vector256.Sum(a11) + Tail(w1, x1, c, cols);
        y1[2] = Vector256.Sum(a12) + Tail(w2, x1, c, cols);
        y1[3] = Vector256.Sum(a13) + Tail(w3, x1, c, cols);
        float* y2 = y1 + yStride;
        y2[0] = Vector256.Sum(a20) + Tail(w0, x2, c, cols);
        y2[1] = Vector256.Sum(a21) + Tail(w1, x2, c, cols);
        y2[2] = Vector256.Sum(a22) + Tail(w2, x2, c, cols);
        y2[3] = Vector256.Sum(a23) + Tail(w3, x2, c, cols);
        float* y3 = y2 + yStride;
        y3[0] = Vector256.Sum(a30) + Tail(w0, x3, c, cols);
        y3[1] = Vector256.Sum(a31) + Tail(w1, x3, c, cols);
        y3[2] = Vector256.Sum(a32) + Tail(w2, x3, c, cols);
        y3[3] = Vector256.Sum(a33) + Tail(w3, x3, c, cols);
    }

    /// <summary><c>y[k] = w[k] · x</c> for four weight rows and one activation row (the batch's last rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1x4(float* w, long ws, float* x, int cols, float* y)
    {
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int c = 0;
        for (; c + 8 <= cols; c += 8)
        {
            var u = Vector256.Load(x + c);
            a0 = Vector256.MultiplyAddEstimate(Vector256.Load(w0 + c), u, a0);
            a1 = Vector256.MultiplyAddEstimate(Vector256.Load(w1 + c), u, a1);
            a2 = Vector256.MultiplyAddEstimate(Vector256.Load(w2 + c), u, a2);
            a3 = Vector256.MultiplyAddEstimate(Vector256.Load(w3 + c), u, a3);
        }
        y[0] = Vector256.Sum(a0) + Tail(w0, x, c, cols);
        y[1] = Vector256.Sum(a1) + Tail(w1, x, c, cols);
        y[2] = Vector256.Sum(a2) + Tail(w2, x, c, cols);
        y[3] = Vector256.Sum(a3) + Tail(w3, x, c, cols);
    }

    /// <summary>The columns past the last full vector (cols not a multiple of 8, e.g. 172), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail(float* w, float* x, int c, int cols)
    {
        float s = 0;
        for (; c < cols; c++) s += w[c] * x[c];
        return s;
    }
}
