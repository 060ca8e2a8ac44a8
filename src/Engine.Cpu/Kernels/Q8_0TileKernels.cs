using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Quant;

namespace Engine.Cpu.Kernels;

/// <summary>
/// Register-tiled Q8_0 · Q8_0 products for batches (AVX2 path, <c>n ≥ </c><see cref="FloatTileKernels.MinRows"/>).
/// The per-row kernel (<see cref="Q8_0Kernels.MatRows"/>) pairs four weight rows with one activation row, so each
/// weight block is loaded, made absolute and its scale widened once per activation row; here a 2 × 4 tile (two
/// activation rows by four weight rows) keeps eight accumulators in registers, each weight block's |w| and scale
/// serve both activation rows, and the chunk's scales are widened to f32 once per call rather than per row.
/// <para>
/// Loop order, for a chunk of weight rows <c>[r0, r1)</c>: pairs of activation rows (2 · cols bytes, in L1) sweep
/// the chunk (read where it lies in the GGUF mapping, 34-byte blocks, in L2). .NET 10 exposes VNNI only as
/// <see cref="AvxVnni"/> (VEX, absent on Zen 4), so the int8 products use maddubs with the sign trick as the
/// per-row AVX2 kernel does.
/// </para>
/// Arithmetic per block is that of the per-row AVX2 kernel (exact int32 lane sums, f32 FMA with d_w · d_x), so the
/// same bound against the reference applies (<c>Tolerances.Q8MatMul</c> in the tests).
/// </summary>
internal static unsafe class Q8_0TileKernels
{
    private const int QK = BlockQ8_0.Size;
    private const int BlockBytes = BlockQ8_0.ByteSize;

    /// <summary>Whether the tiled kernel runs on this machine (it needs AVX2 and FMA).</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Floats of scratch <see cref="MatRows"/> needs for a chunk of <paramref name="chunkRows"/> rows.</summary>
    public static long ScratchFloats(int chunkRows, int cols) => (long)chunkRows * (cols / QK);

    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for weight rows <c>o in [r0, r1)</c> and all <c>j in [0, n)</c>, with
    /// the activations quantized as <c>xq [n, cols] int8</c>, <c>xd [n, cols / 32] f32</c>.
    /// <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats for <c>r1 − r0</c> rows.
    /// </summary>
    public static void MatRows(byte* w, long rowBytes, int r0, int r1, sbyte* xq, float* xd, int cols, int n,
                               float* y, int yStride, float* scratch)
    {
        int nb = cols / QK;
        int rows = r1 - r0;
        byte* wc = w + r0 * rowBytes;
        float* wd = scratch; // [rows, nb] f32: the chunk's block scales, widened once
        for (int r = 0; r < rows; r++)
        {
            byte* row = wc + r * rowBytes;
            for (int b = 0; b < nb; b++) wd[r * nb + b] = HalfConversion.ToSingle(*(ushort*)(row + b * BlockBytes));
        }

        int j = 0;
        for (; j + 2 <= n; j += 2)
        {
            sbyte* x0 = xq + (long)j * cols;
            float* d0 = xd + (long)j * nb;
            float* y0 = y + (long)j * yStride + r0;
            int r = 0;
            for (; r + 4 <= rows; r += 4)
                Tile2x4(wc + r * rowBytes, rowBytes, wd + r * nb, x0, x0 + cols, d0, d0 + nb, nb, y0 + r, y0 + yStride + r);
            for (; r < rows; r++)
            {
                y0[r] = Row(wc + r * rowBytes, wd + r * nb, x0, d0, nb);
                y0[yStride + r] = Row(wc + r * rowBytes, wd + r * nb, x0 + cols, d0 + nb, nb);
            }
        }
        for (; j < n; j++)
        {
            sbyte* x0 = xq + (long)j * cols;
            float* d0 = xd + (long)j * nb;
            float* y0 = y + (long)j * yStride + r0;
            for (int r = 0; r < rows; r++) y0[r] = Row(wc + r * rowBytes, wd + r * nb, x0, d0, nb);
        }
    }

    /// <summary>Two activation rows (xa, xb) by four weight rows from <paramref name="w"/> (stride rb, scales wd [4, nb]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile2x4(byte* w, long rb, float* wd, sbyte* xa, sbyte* xb, float* da, float* db, int nb, float* ya, float* yb)
    {
        byte* w0 = w + 2, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb; // past each row's first f16 scale
        var ones = Vector256.Create((short)1);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (int b = 0; b < nb; b++)
        {
            long off = (long)b * BlockBytes;
            var v0 = Avx.LoadVector256((sbyte*)(w0 + off));
            var v1 = Avx.LoadVector256((sbyte*)(w1 + off));
            var v2 = Avx.LoadVector256((sbyte*)(w2 + off));
            var v3 = Avx.LoadVector256((sbyte*)(w3 + off));
            var m0 = Avx2.Sign(v0, v0).AsByte();
            var m1 = Avx2.Sign(v1, v1).AsByte();
            var m2 = Avx2.Sign(v2, v2).AsByte();
            var m3 = Avx2.Sign(v3, v3).AsByte();
            float s0 = wd[b], s1 = wd[nb + b], s2 = wd[2 * nb + b], s3 = wd[3 * nb + b];

            var x = Avx.LoadVector256(xa + b * QK);
            float dx = da[b];
            a0 = Fma.MultiplyAdd(Dot(m0, v0, x, ones), Vector256.Create(s0 * dx), a0);
            a1 = Fma.MultiplyAdd(Dot(m1, v1, x, ones), Vector256.Create(s1 * dx), a1);
            a2 = Fma.MultiplyAdd(Dot(m2, v2, x, ones), Vector256.Create(s2 * dx), a2);
            a3 = Fma.MultiplyAdd(Dot(m3, v3, x, ones), Vector256.Create(s3 * dx), a3);

            x = Avx.LoadVector256(xb + b * QK);
            dx = db[b];
            b0 = Fma.MultiplyAdd(Dot(m0, v0, x, ones), Vector256.Create(s0 * dx), b0);
            b1 = Fma.MultiplyAdd(Dot(m1, v1, x, ones), Vector256.Create(s1 * dx), b1);
            b2 = Fma.MultiplyAdd(Dot(m2, v2, x, ones), Vector256.Create(s2 * dx), b2);
            b3 = Fma.MultiplyAdd(Dot(m3, v3, x, ones), Vector256.Create(s3 * dx), b3);
        }
        ya[0] = Vector256.Sum(a0);
        ya[1] = Vector256.Sum(a1);
        ya[2] = Vector256.Sum(a2);
        ya[3] = Vector256.Sum(a3);
        yb[0] = Vector256.Sum(b0);
        yb[1] = Vector256.Sum(b1);
        yb[2] = Vector256.Sum(b2);
        yb[3] = Vector256.Sum(b3);
    }

    /// <summary>One weight row (scales <paramref name="wd"/>) by one activation row: the partial tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Row(byte* w, float* wd, sbyte* x, float* dx, int nb)
    {
        var ones = Vector256.Create((short)1);
        Vector256<float> a = default;
        for (int b = 0; b < nb; b++)
        {
            var v = Avx.LoadVector256((sbyte*)(w + (long)b * BlockBytes + 2));
            a = Fma.MultiplyAdd(Dot(Avx2.Sign(v, v).AsByte(), v, Avx.LoadVector256(x + b * QK), ones), Vector256.Create(wd[b] * dx[b]), a);
        }
        return Vector256.Sum(a);
    }

    /// <summary>
    /// The eight int32 lane sums of one block's 32 products as f32: |w| (u8) times sign(w)·x (s8) by maddubs (pairs
    /// to s16, at most 2 · 128 · 127 = 32512, no saturation), then pairs of s16 to s32 by madd with ones. Exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Dot(Vector256<byte> absW, Vector256<sbyte> w, Vector256<sbyte> x, Vector256<short> ones) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(absW, Avx2.Sign(x, w)), ones));
}
