using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Quant;

namespace Engine.Cpu.Kernels;

/// <summary>
/// Register-blocked Q8_0 · Q8_0 products for batches on AVX-512 machines (<c>n ≥ </c><see cref="FloatTileKernels.MinRows"/>),
/// in int16: each 32-int8 weight block is widened once to 32 int16 (one <see cref="Vector512{T}"/>, exactly one Q8_0
/// block) and multiplied against activation blocks pre-widened to int16 by vpmaddwd
/// (<see cref="Avx512BW.MultiplyAddAdjacent(Vector512{short}, Vector512{short})"/>): no sign trick, three 512-bit ops
/// (madd, convert, FMA) per (row, column, block). A 4 × 4 tile (four activation rows by four weight rows) keeps sixteen accumulators in registers, so each weight block
/// is loaded and prepared once for four activation rows and each activation block once for four weight rows.
/// <para>
/// For a chunk of weight rows <c>[r0, r1)</c> (in L2): the chunk's f16 block scales are widened to f32 once; then for
/// each group of four activation rows (widened or transposed into scratch, in L1) every group of four weight rows runs
/// one tile over all blocks. A tile first multiplies its sixteen scale pairs per block into a table
/// (<c>[nb, 4 rows, 4 cols] f32</c>, one 128-bit multiply per row and block), so the inner loop only broadcasts a ready
/// d_w·d_x from L1 (a load, not an ALU op). Missing activation rows of the last group are zeros (their sums are not
/// stored); the last one to three weight rows run a 1 × 4 tile.
/// </para>
/// <para>
/// .NET 10 exposes VNNI only as <see cref="AvxVnni"/> (VEX encoded; false on Zen 4, whose VNNI is EVEX only), so there
/// is no vpdpbusd/vpdpwssd here. On Zen 4 this kernel is about 1.2× the AVX2 2 × 4 tile but below the f32 FMA path of
/// <see cref="Q8_0DequantizedTileKernels"/> (Q8TileKernelBenchmarks, bench/RESULTS.md), which is therefore the default;
/// it stays selectable (<see cref="Q8BatchKernel.Int16Avx512"/>) for machines whose integer multipliers are wider.
/// </para>
/// Per block the arithmetic is exact in int32 (|w|, |x| ≤ 128: 32 products ≤ 2^19) and one f32 FMA adds it times
/// d_w·d_x, as the reference does; only the order of the f32 additions differs (<c>Tolerances.Q8MatMul</c>).
/// </summary>
internal static unsafe class Q8_0Avx512TileKernels
{
    private const int QK = BlockQ8_0.Size;
    private const int BlockBytes = BlockQ8_0.ByteSize;

    /// <summary>Activation rows per tile.</summary>
    public const int TileCols = 4;

    /// <summary>Weight rows per tile.</summary>
    public const int TileRows = 4;

    /// <summary>Whether the kernel runs here: AVX-512 F, BW and VL (the 256-bit reductions), and FMA.</summary>
    public static bool IsSupported => Avx512F.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Floats of scratch <see cref="MatRows"/> needs for a chunk of <paramref name="chunkRows"/> rows of <paramref name="cols"/>.</summary>
    public static long ScratchFloats(int chunkRows, int cols)
    {
        long nb = cols / QK;
        return chunkRows * nb         // wd [chunkRows, nb] f32
             + TileCols * cols / 2    // x16 [nb, 4, 32] int16
             + TileCols * nb          // dx [nb, 4] f32
             + TileRows * TileCols * nb // table [nb, 4, 4] f32
             + 16;                    // room to align x16 to 64 bytes
    }

    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for weight rows <c>o in [r0, r1)</c> and all <c>j in [0, n)</c>, with the
    /// activations quantized as <c>xq [n, cols] int8</c>, <c>xd [n, cols / 32] f32</c>; <paramref name="scratch"/> holds
    /// <see cref="ScratchFloats"/> floats for <c>r1 − r0</c> rows.
    /// </summary>
    public static void MatRows(byte* w, long rowBytes, int r0, int r1, sbyte* xq, float* xd, int cols, int n,
                               float* y, int yStride, float* scratch)
    {
        int nb = cols / QK;
        int rows = r1 - r0;
        byte* wc = w + r0 * rowBytes;
        float* wd = scratch;                                 // [rows, nb] f32: the chunk's block scales, widened once
        float* dx = wd + (long)rows * nb;                    // [nb, 4] f32: activation scales of the current group
        float* table = dx + TileCols * nb;                   // [nb, 4, 4] f32: d_w · d_x of the current tile
        short* x16 = (short*)(((nint)(table + TileRows * TileCols * nb) + 63) & ~(nint)63); // [nb, 4, 32] int16: the current group's activations
        for (int r = 0; r < rows; r++)
        {
            byte* row = wc + r * rowBytes;
            for (int b = 0; b < nb; b++) wd[r * nb + b] = HalfConversion.ToSingle(*(ushort*)(row + b * BlockBytes));
        }

        for (int j = 0; j < n; j += TileCols)
        {
            int m = Math.Min(TileCols, n - j);
            PackInt16(xq + (long)j * cols, cols, m, x16);
            for (int b = 0; b < nb; b++)
                for (int c = 0; c < TileCols; c++) dx[b * TileCols + c] = c < m ? xd[(long)(j + c) * nb + b] : 0f;

            float* yj = y + (long)j * yStride + r0;
            int r = 0;
            for (; r + TileRows <= rows; r += TileRows)
            {
                Scales(wd + r * nb, nb, dx, table);
                var s = Int16Tile4x4(wc + r * rowBytes, rowBytes, x16, table, nb);
                // s: [4 rows] of [4 cols] sums
                for (int c = 0; c < m; c++)
                {
                    float* yc = yj + (long)c * yStride + r;
                    yc[0] = s.R0.GetElement(c);
                    yc[1] = s.R1.GetElement(c);
                    yc[2] = s.R2.GetElement(c);
                    yc[3] = s.R3.GetElement(c);
                }
            }
            for (; r < rows; r++)
            {
                var s = Int16Tile1x4(wc + r * rowBytes, wd + r * nb, x16, dx, nb);
                for (int c = 0; c < m; c++) yj[(long)c * yStride + r] = s.GetElement(c);
            }
        }
    }

    /// <summary>Four rows' sums over four activation rows each.</summary>
    private struct Sums4x4
    {
        public Vector128<float> R0, R1, R2, R3;
    }

    /// <summary><c>x16 [nb, 4, 32] int16</c> from <c>m ≤ 4</c> rows of <c>xq [m, cols] int8</c>; missing rows are zeros.</summary>
    private static void PackInt16(sbyte* xq, int cols, int m, short* x16)
    {
        int nb = cols / QK;
        for (int c = 0; c < TileCols; c++)
            for (int b = 0; b < nb; b++)
            {
                var v = c < m ? Avx512BW.ConvertToVector512Int16(Vector256.Load(xq + (long)c * cols + b * QK)) : Vector512<short>.Zero;
                v.StoreAligned(x16 + (b * TileCols + c) * QK);
            }
    }

    /// <summary><c>table[b, r, c] = wd[r, b] · dx[b, c]</c> for the tile's four rows (scales <c>wd [4, nb]</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(float* wd, int nb, float* dx, float* table)
    {
        for (int b = 0; b < nb; b++)
        {
            var d = Vector128.Load(dx + b * TileCols);
            float* t = table + b * TileRows * TileCols;
            (Vector128.Create(wd[b]) * d).Store(t);
            (Vector128.Create(wd[nb + b]) * d).Store(t + 4);
            (Vector128.Create(wd[2 * nb + b]) * d).Store(t + 8);
            (Vector128.Create(wd[3 * nb + b]) * d).Store(t + 12);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Sums4x4 Int16Tile4x4(byte* w, long rb, short* x16, float* table, int nb)
    {
        byte* w0 = w + 2, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb; // past each row's first f16 scale
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int b = 0; b < nb; b++)
        {
            long off = (long)b * BlockBytes;
            short* xb = x16 + b * TileCols * QK;
            float* t = table + b * TileRows * TileCols;
            var x0 = Vector512.LoadAligned(xb);
            var x1 = Vector512.LoadAligned(xb + QK);
            var x2 = Vector512.LoadAligned(xb + 2 * QK);
            var x3 = Vector512.LoadAligned(xb + 3 * QK);

            var v = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w0 + off)));
            a00 = Fma512(v, x0, t[0], a00);
            a01 = Fma512(v, x1, t[1], a01);
            a02 = Fma512(v, x2, t[2], a02);
            a03 = Fma512(v, x3, t[3], a03);
            v = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w1 + off)));
            a10 = Fma512(v, x0, t[4], a10);
            a11 = Fma512(v, x1, t[5], a11);
            a12 = Fma512(v, x2, t[6], a12);
            a13 = Fma512(v, x3, t[7], a13);
            v = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w2 + off)));
            a20 = Fma512(v, x0, t[8], a20);
            a21 = Fma512(v, x1, t[9], a21);
            a22 = Fma512(v, x2, t[10], a22);
            a23 = Fma512(v, x3, t[11], a23);
            v = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w3 + off)));
            a30 = Fma512(v, x0, t[12], a30);
            a31 = Fma512(v, x1, t[13], a31);
            a32 = Fma512(v, x2, t[14], a32);
            a33 = Fma512(v, x3, t[15], a33);
        }
        return new Sums4x4
        {
            R0 = Reduce4(Half(a00), Half(a01), Half(a02), Half(a03)),
            R1 = Reduce4(Half(a10), Half(a11), Half(a12), Half(a13)),
            R2 = Reduce4(Half(a20), Half(a21), Half(a22), Half(a23)),
            R3 = Reduce4(Half(a30), Half(a31), Half(a32), Half(a33)),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> Int16Tile1x4(byte* w, float* wd, short* x16, float* dx, int nb)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            short* xb = x16 + b * TileCols * QK;
            float* d = dx + b * TileCols;
            float s = wd[b];
            var v = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w + 2 + (long)b * BlockBytes)));
            a0 = Fma512(v, Vector512.LoadAligned(xb), s * d[0], a0);
            a1 = Fma512(v, Vector512.LoadAligned(xb + QK), s * d[1], a1);
            a2 = Fma512(v, Vector512.LoadAligned(xb + 2 * QK), s * d[2], a2);
            a3 = Fma512(v, Vector512.LoadAligned(xb + 3 * QK), s * d[3], a3);
        }
        return Reduce4(Half(a0), Half(a1), Half(a2), Half(a3));
    }

    /// <summary>acc + (Σ of 32 int16 products, as 16 exact int32 pair sums) · scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma512(Vector512<short> w, Vector512<short> x, float scale, Vector512<float> acc) =>
        Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(w, x)), Vector512.Create(scale), acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Half(Vector512<float> a) => a.GetLower() + a.GetUpper();

    /// <summary>The lane sums of four vectors, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
    {
        var h = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d)); // [a b c d | a b c d] partial sums
        return h.GetLower() + h.GetUpper();
    }
}
