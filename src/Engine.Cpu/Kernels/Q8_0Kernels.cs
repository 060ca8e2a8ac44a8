using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Quant;

namespace Engine.Cpu.Kernels;

/// <summary>
/// Q8_0 kernels: the activation quantizer and int8 · int8 dot products against weight rows as they lie in
/// the GGUF mapping (34-byte blocks: f16 scale, then 32 int8). Three families side by side (STYLE.md habit 2):
/// AVX2 (maddubs with the sign trick), portable <see cref="Vector256"/>, and scalar (bit-identical to
/// <c>ReferenceBackend.DotQ8_0</c>).
/// <para>
/// Quantized activations use a split layout rather than 34-byte blocks so vector loads are aligned and the
/// scales are decoded once: <c>qs [n, cols] int8</c> and <c>d [n, cols / 32] f32</c>, where each d is the
/// f16-rounded block scale widened back to f32 (exactly the value the reference multiplies by).
/// </para>
/// </summary>
internal static unsafe class Q8_0Kernels
{
    private const int QK = BlockQ8_0.Size;          // 32 values per block
    private const int BlockBytes = BlockQ8_0.ByteSize; // 34 bytes per weight block

    // ---- activation quantizer -----------------------------------------------------------------

    /// <summary>
    /// Quantizes one row of <paramref name="cols"/> floats (a multiple of 32) exactly as
    /// <see cref="Q8_0.QuantizeRow(ReadOnlySpan{float}, Span{BlockQ8_0})"/>: d = amax / 127 stored as f16,
    /// id = 1 / d from the f32 d, q = round half away from zero of x · id.
    /// </summary>
    public static void QuantizeRow(CpuKernelPath path, float* x, int cols, sbyte* qs, float* d)
    {
        int nb = cols / QK;
        if (path == CpuKernelPath.Scalar)
        {
            for (int b = 0; b < nb; b++) QuantizeBlockScalar(x + b * QK, qs + b * QK, d + b);
            return;
        }
        for (int b = 0; b < nb; b++) QuantizeBlockVector(x + b * QK, qs + b * QK, d + b);
    }

    private static void QuantizeBlockScalar(float* x, sbyte* q, float* d)
    {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float df = amax / 127f;
        float id = df != 0 ? 1f / df : 0f;
        *d = (float)(Half)df;
        for (int j = 0; j < QK; j++) q[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void QuantizeBlockVector(float* x, sbyte* q, float* d)
    {
        var v0 = Vector256.Load(x);
        var v1 = Vector256.Load(x + 8);
        var v2 = Vector256.Load(x + 16);
        var v3 = Vector256.Load(x + 24);
        // Abs values are never NaN-free-compared differently from MathF.Max for ordinary inputs; max is exact.
        var m = Vector256.MaxNative(Vector256.MaxNative(Vector256.Abs(v0), Vector256.Abs(v1)),
                                    Vector256.MaxNative(Vector256.Abs(v2), Vector256.Abs(v3)));
        var m128 = Vector128.MaxNative(m.GetLower(), m.GetUpper());
        m128 = Vector128.MaxNative(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
        m128 = Vector128.MaxNative(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2)));
        float amax = m128.ToScalar();
        float df = amax / 127f;
        float id = df != 0 ? 1f / df : 0f;
        *d = (float)(Half)df;
        var vid = Vector256.Create(id);
        var i0 = Vector256.ConvertToInt32(RoundHalfAwayFromZero(v0 * vid));
        var i1 = Vector256.ConvertToInt32(RoundHalfAwayFromZero(v1 * vid));
        var i2 = Vector256.ConvertToInt32(RoundHalfAwayFromZero(v2 * vid));
        var i3 = Vector256.ConvertToInt32(RoundHalfAwayFromZero(v3 * vid));
        // |q| <= 127, so the truncating narrows are exact and keep element order.
        Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
    }

    /// <summary>
    /// C's roundf: truncate, then step away from zero when the dropped fraction is at least one half.
    /// v − trunc(v) is exact in f32, so ties are detected exactly (adding 0.5 then truncating is not:
    /// 0.49999997 + 0.5 rounds up to 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> RoundHalfAwayFromZero(Vector256<float> v)
    {
        var t = Vector256.Truncate(v);
        var frac = v - t;
        var one = (Vector256.Create(1f).AsUInt32() | (v.AsUInt32() & Vector256.Create(0x8000_0000u))).AsSingle();
        var step = Vector256.GreaterThanOrEqual(Vector256.Abs(frac), Vector256.Create(0.5f)) & one;
        return t + step;
    }

    // ---- dot products -------------------------------------------------------------------------

    /// <summary>
    /// <c>y[j * yStride + o] = w[o] · x[j]</c> for weight rows <c>o in [r0, r1)</c> and activation rows
    /// <c>j in [0, n)</c>. Rows are taken four at a time and each group of four is used for all n
    /// activation rows while it sits in L1, so every weight byte comes from memory once per call.
    /// The SIMD paths first widen the group's f16 block scales to f32 (vectorized, once per group) and
    /// multiply them by the activation scales (once per activation row), so the inner loop only broadcasts
    /// a ready d_w·d_x from L1. <paramref name="scratch"/> holds at least <c>cols / 4</c> floats.
    /// </summary>
    public static void MatRows(CpuKernelPath path, byte* w, long rowBytes, int r0, int r1,
                               sbyte* xq, float* xd, int cols, int n, float* y, int yStride, float* scratch)
    {
        int nb = cols / QK;
        float* wd = scratch;            // [4, nb] f32: weight block scales of the current group
        float* pd = scratch + 4 * nb;   // [4, nb] f32: d_w · d_x for the current activation row
        int o = r0;
        for (; o + 4 <= r1; o += 4)
        {
            byte* wr = w + o * rowBytes;
            if (path != CpuKernelPath.Scalar) WidenScales4(wr, rowBytes, nb, wd);
            for (int j = 0; j < n; j++)
            {
                float* yj = y + (long)j * yStride + o;
                sbyte* xj = xq + (long)j * cols;
                float* dj = xd + (long)j * nb;
                switch (path)
                {
                    case CpuKernelPath.Avx2:
                        ScaleProducts4(wd, dj, nb, pd);
                        Avx2Rows4(wr, rowBytes, xj, pd, nb, yj);
                        break;
                    case CpuKernelPath.Vector256:
                        ScaleProducts4(wd, dj, nb, pd);
                        VectorRows4(wr, rowBytes, xj, pd, nb, yj);
                        break;
                    default:
                        for (int k = 0; k < 4; k++) yj[k] = ScalarRow(wr + k * rowBytes, xj, dj, nb);
                        break;
                }
            }
        }
        for (; o < r1; o++)
        {
            byte* wr = w + o * rowBytes;
            for (int j = 0; j < n; j++)
            {
                sbyte* xj = xq + (long)j * cols;
                float* dj = xd + (long)j * nb;
                y[(long)j * yStride + o] = path switch
                {
                    CpuKernelPath.Avx2 => Avx2Row(wr, xj, dj, nb),
                    CpuKernelPath.Vector256 => VectorRow(wr, xj, dj, nb),
                    _ => ScalarRow(wr, xj, dj, nb),
                };
            }
        }
    }

    /// <summary><c>wd[k, b]</c> = f32 scale of block b of row k, for the four rows at <paramref name="w0"/>.</summary>
    private static void WidenScales4(byte* w0, long rowBytes, int nb, float* wd)
    {
        for (int k = 0; k < 4; k++)
        {
            byte* row = w0 + k * rowBytes;
            float* dst = wd + k * nb;
            int b = 0;
            for (; b + 8 <= nb; b += 8)
            {
                byte* p = row + b * BlockBytes;
                var h = Vector256.Create(
                    (uint)*(ushort*)p, *(ushort*)(p + BlockBytes), *(ushort*)(p + 2 * BlockBytes), *(ushort*)(p + 3 * BlockBytes),
                    *(ushort*)(p + 4 * BlockBytes), *(ushort*)(p + 5 * BlockBytes), *(ushort*)(p + 6 * BlockBytes), *(ushort*)(p + 7 * BlockBytes));
                HalfConversion.ToSingle(h).Store(dst + b);
            }
            for (; b < nb; b++) dst[b] = HalfConversion.ToSingle(*(ushort*)(row + b * BlockBytes));
        }
    }

    /// <summary><c>pd[k, b] = wd[k, b] · xd[b]</c>: the f32 product of both block scales, as the reference forms it.</summary>
    private static void ScaleProducts4(float* wd, float* xd, int nb, float* pd)
    {
        for (int k = 0; k < 4; k++)
        {
            float* src = wd + k * nb;
            float* dst = pd + k * nb;
            int b = 0;
            for (; b + 8 <= nb; b += 8) (Vector256.Load(src + b) * Vector256.Load(xd + b)).Store(dst + b);
            for (; b < nb; b++) dst[b] = src[b] * xd[b];
        }
    }

    /// <summary>Scalar ggml_vec_dot_q8_0_q8_0: exact int32 per block, then <c>sum += acc * (d_w * d_x)</c> in f32, as the reference.</summary>
    public static float ScalarRow(byte* w, sbyte* xq, float* xd, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + b * BlockBytes;
            sbyte* q = (sbyte*)(blk + 2);
            sbyte* x = xq + b * QK;
            int acc = 0;
            for (int j = 0; j < QK; j++) acc += q[j] * x[j];
            sum += acc * (HalfConversion.ToSingle(*(ushort*)blk) * xd[b]);
        }
        return sum;
    }

    // AVX2: |w| as u8 times sign(w)·x as s8 (maddubs: u8 × s8 → pairs summed to s16, at most
    // 2 · 128 · 127 = 32512, no saturation), pairs of s16 summed to s32 by madd with ones, converted to
    // f32 and accumulated by FMA with d_w · d_x. Four rows share each activation load.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Avx2Rows4(byte* w0, long rb, sbyte* xq, float* pd, int nb, float* y)
    {
        byte* w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
        var ones = Vector256.Create((short)1);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            var x = Avx.LoadVector256(xq + b * QK);
            long off = (long)b * BlockBytes;
            a0 = Fma.MultiplyAdd(Avx2Dot(w0 + off, x, ones), Vector256.Create(pd[b]), a0);
            a1 = Fma.MultiplyAdd(Avx2Dot(w1 + off, x, ones), Vector256.Create(pd[nb + b]), a1);
            a2 = Fma.MultiplyAdd(Avx2Dot(w2 + off, x, ones), Vector256.Create(pd[2 * nb + b]), a2);
            a3 = Fma.MultiplyAdd(Avx2Dot(w3 + off, x, ones), Vector256.Create(pd[3 * nb + b]), a3);
        }
        y[0] = Vector256.Sum(a0);
        y[1] = Vector256.Sum(a1);
        y[2] = Vector256.Sum(a2);
        y[3] = Vector256.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Avx2Row(byte* w, sbyte* xq, float* xd, int nb)
    {
        var ones = Vector256.Create((short)1);
        Vector256<float> a = default;
        for (int b = 0; b < nb; b++)
            a = Avx2Block(w + (long)b * BlockBytes, Avx.LoadVector256(xq + b * QK), xd[b], ones, a);
        return Vector256.Sum(a);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Avx2Block(byte* blk, Vector256<sbyte> x, float dx, Vector256<short> ones, Vector256<float> acc) =>
        Fma.MultiplyAdd(Avx2Dot(blk, x, ones), Vector256.Create(HalfConversion.ToSingle(*(ushort*)blk) * dx), acc);

    /// <summary>The eight partial int32 sums of one block's 32 products, as f32 (exact: |sum| &lt;= 4 · 32512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Avx2Dot(byte* blk, Vector256<sbyte> x, Vector256<short> ones)
    {
        var w = Avx.LoadVector256((sbyte*)(blk + 2));
        var s16 = Avx2.MultiplyAddAdjacent(Avx2.Sign(w, w).AsByte(), Avx2.Sign(x, w));
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(s16, ones));
    }

    // Portable: widen both operands to s16, multiply (|w·x| <= 128 · 127 fits s16), add the two halves
    // (<= 32512), widen to s32, add, convert, multiply-add with d_w · d_x.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void VectorRows4(byte* w0, long rb, sbyte* xq, float* pd, int nb, float* y)
    {
        byte* w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            var (xl, xh) = Vector256.Widen(Vector256.Load(xq + b * QK));
            long off = (long)b * BlockBytes;
            a0 = Vector256.MultiplyAddEstimate(VectorDot(w0 + off, xl, xh), Vector256.Create(pd[b]), a0);
            a1 = Vector256.MultiplyAddEstimate(VectorDot(w1 + off, xl, xh), Vector256.Create(pd[nb + b]), a1);
            a2 = Vector256.MultiplyAddEstimate(VectorDot(w2 + off, xl, xh), Vector256.Create(pd[2 * nb + b]), a2);
            a3 = Vector256.MultiplyAddEstimate(VectorDot(w3 + off, xl, xh), Vector256.Create(pd[3 * nb + b]), a3);
        }
        y[0] = Vector256.Sum(a0);
        y[1] = Vector256.Sum(a1);
        y[2] = Vector256.Sum(a2);
        y[3] = Vector256.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float VectorRow(byte* w, sbyte* xq, float* xd, int nb)
    {
        Vector256<float> a = default;
        for (int b = 0; b < nb; b++)
        {
            var (xl, xh) = Vector256.Widen(Vector256.Load(xq + b * QK));
            a = VectorBlock(w + (long)b * BlockBytes, xl, xh, xd[b], a);
        }
        return Vector256.Sum(a);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> VectorBlock(byte* blk, Vector256<short> xl, Vector256<short> xh, float dx, Vector256<float> acc) =>
        Vector256.MultiplyAddEstimate(VectorDot(blk, xl, xh), Vector256.Create(HalfConversion.ToSingle(*(ushort*)blk) * dx), acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> VectorDot(byte* blk, Vector256<short> xl, Vector256<short> xh)
    {
        var (wl, wh) = Vector256.Widen(Vector256.Load((sbyte*)(blk + 2)));
        var s16 = wl * xl + wh * xh;
        var (s0, s1) = Vector256.Widen(s16);
        return Vector256.ConvertToSingle(s0 + s1);
    }
}
