using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Gguf;
using Engine.Core.Quant;

namespace Engine.Cpu.Kernels;

/// <summary>
/// Batched Q8_0 · Q8_0 products (<c>n ≥ </c><see cref="FloatTileKernels.MinRows"/>) in f32: a chunk of weight rows is
/// dequantized once (<c>d_w · q_w</c>, exact in f32: an 11-bit f16 significand times a 7-bit integer) into L2 scratch,
/// the activations once per product (<c>d_x · q_x</c> of the same quantized bytes the reference multiplies, also exact),
/// and the f32 4 × 4 tile (<see cref="FloatTileKernels"/>) sweeps the chunk.
/// <para>
/// Why f32 for an int8 format: on Zen 4 the FMA pipes outrun the integer multipliers. An int8 block product costs
/// maddubs + madd + convert + FMA per (row, column, block) (or madd + convert + FMA in int16, <see cref="Q8_0Avx512TileKernels"/>),
/// while f32 needs four 8-lane FMAs for the same 32 products and no conversion; the weights' conversion is paid once
/// per chunk and shared by all n activation rows. Measured single-threaded (Q8TileKernelBenchmarks, bench/RESULTS.md):
/// this path beats both integer tiles at n = 16 and n = 256.
/// </para>
/// Each product <c>(d_w q_w)(d_x q_x)</c> is exact before the FMA's rounding; only the f32 summation differs from the
/// reference (which sums 32 exact int32 products per block, then scales), a few ulps of the row's magnitude
/// (<c>Tolerances.Q8MatMul</c> in the tests).
/// </summary>
internal static unsafe class Q8_0DequantizedTileKernels
{
    private const int QK = BlockQ8_0.Size;
    private const int BlockBytes = BlockQ8_0.ByteSize;

    /// <summary>Whether the vector dequantizers run here (AVX2 sign extension); the tile itself is portable Vector256.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Floats of scratch <see cref="MatRows"/> needs for a chunk of <paramref name="chunkRows"/> rows of <paramref name="cols"/>.</summary>
    public static long ScratchFloats(int chunkRows, int cols) => (long)chunkRows * cols;

    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for weight rows <c>o in [r0, r1)</c> and all <c>j in [0, n)</c>, where
    /// <paramref name="xf"/> holds the dequantized activations <c>[n, cols] f32</c> (<see cref="DequantizeRow(sbyte*, float*, float*, int)"/>).
    /// <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats for <c>r1 − r0</c> rows. <paramref name="prefetch"/>,
    /// <paramref name="prefetchBytes"/>: the caller's next chunk, fetched into L2 while this one computes (see
    /// <see cref="FloatTileKernels.MatRows"/>); null for none.
    /// </summary>
    public static void MatRows(byte* w, long rowBytes, int r0, int r1, float* xf, int cols, int n, float* y, int yStride, float* scratch,
                               byte* prefetch = null, long prefetchBytes = 0)
    {
        int rows = r1 - r0;
        for (int r = 0; r < rows; r++) DequantizeRow(w + (r0 + r) * rowBytes, scratch + (long)r * cols, cols); // [rows, cols] f32
        FloatTileKernels.MatRows(GgmlType.F32, (byte*)scratch, (long)cols * sizeof(float), 0, rows, xf, cols, n, y + r0, yStride, null,
                                 prefetch, prefetchBytes);
    }

    /// <summary>One weight row of <paramref name="cols"/> values (34-byte blocks) to f32: <c>dst[i] = d_b · q[i]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DequantizeRow(byte* row, float* dst, int cols)
    {
        int nb = cols / QK;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + b * BlockBytes;
            Block((sbyte*)(blk + 2), Vector256.Create(HalfConversion.ToSingle(*(ushort*)blk)), dst + b * QK);
        }
    }

    /// <summary>
    /// One quantized activation row (<c>xq [cols] int8</c>, <c>xd [cols / 32] f32</c>) to f32: <c>xf[i] = xd[i / 32] · xq[i]</c>,
    /// exactly the values the reference multiplies.
    /// </summary>
    public static void DequantizeRow(sbyte* xq, float* xd, float* xf, int cols)
    {
        int nb = cols / QK;
        for (int b = 0; b < nb; b++) Block(xq + b * QK, Vector256.Create(xd[b]), xf + b * QK);
    }

    /// <summary>32 int8 times one scale, to 32 f32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block(sbyte* q, Vector256<float> d, float* dst)
    {
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) * d).Store(dst);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 8)) * d).Store(dst + 8);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 16)) * d).Store(dst + 16);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 24)) * d).Store(dst + 24);
    }
}
