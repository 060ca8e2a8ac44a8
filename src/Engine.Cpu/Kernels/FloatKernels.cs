using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Core.Gguf;
using Engine.Core.Tensors;

namespace Engine.Cpu.Kernels;

/// <summary>
/// f32 products for F32/F16/BF16 weights (rows of any length, e.g. 172): F16/BF16 rows are widened to f32
/// (vectorized, exact) into a scratch row, then dotted in f32 with <see cref="Vector256"/> FMA; the scalar
/// path uses <see cref="RowDecoding"/> and a plain loop, as the reference does.
/// </summary>
internal static unsafe class FloatKernels
{
    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for rows <c>o in [r0, r1)</c>, <c>j in [0, n)</c>; x is
    /// <c>[n, cols] f32</c>. <paramref name="scratch"/> holds at least <paramref name="cols"/> floats.
    /// </summary>
    public static void MatRows(CpuKernelPath path, GgmlType type, byte* w, long rowBytes, int r0, int r1,
                               float* x, int cols, int n, float* y, int yStride, float* scratch)
    {
        bool vector = path != CpuKernelPath.Scalar;
        for (int o = r0; o < r1; o++)
        {
            byte* src = w + o * rowBytes;
            float* row = (float*)src;
            if (type != GgmlType.F32)
            {
                if (vector) DecodeRow(type, src, scratch, cols);
                else RowDecoding.ToFloat(type, new ReadOnlySpan<byte>(src, (int)rowBytes), new Span<float>(scratch, cols));
                row = scratch;
            }
            for (int j = 0; j < n; j++)
                y[(long)j * yStride + o] = vector ? Dot(row, x + (long)j * cols, cols) : DotScalar(row, x + (long)j * cols, cols);
        }
    }

    /// <summary>Widens one F16 or BF16 row to f32 (exact).</summary>
    public static void DecodeRow(GgmlType type, byte* src, float* dst, int cols)
    {
        ushort* h = (ushort*)src;
        int i = 0;
        if (type == GgmlType.F16)
        {
            for (; i + 16 <= cols; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(h + i));
                HalfConversion.ToSingle(lo).Store(dst + i);
                HalfConversion.ToSingle(hi).Store(dst + i + 8);
            }
            for (; i < cols; i++) dst[i] = HalfConversion.ToSingle(h[i]);
        }
        else if (type == GgmlType.BF16)
        {
            // bfloat16 is the upper half of an f32 (ggml_bf16_to_fp32).
            for (; i + 16 <= cols; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(h + i));
                (lo << 16).AsSingle().Store(dst + i);
                (hi << 16).AsSingle().Store(dst + i + 8);
            }
            for (; i < cols; i++) dst[i] = BitConverter.Int32BitsToSingle(h[i] << 16);
        }
        else
        {
            throw new NotSupportedException($"tensor type {type} has no f32 widening");
        }
    }

    /// <summary>f32 dot product, two FMA accumulators of 8 lanes and a scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* a, float* b, int n)
    {
        var s0 = Vector256<float>.Zero;
        var s1 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            s0 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            s1 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
        }
        if (i + 8 <= n)
        {
            s0 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            i += 8;
        }
        float sum = Vector256.Sum(s0 + s1);
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Plain sequential f32 dot product (the reference's order).</summary>
    public static float DotScalar(float* a, float* b, int n)
    {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[i] * b[i];
        return sum;
    }
}
