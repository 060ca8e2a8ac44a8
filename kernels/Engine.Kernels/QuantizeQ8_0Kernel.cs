using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// Quantizes activation rows to Q8_0 for the int8 products, with the rounding of
/// <c>Engine.Core.Quant.Q8_0.QuantizeRow</c> (llama.cpp's quantize_row_q8_0_ref): per block of 32,
/// <c>d = amax/127</c>, <c>q = round_half_away(x / d)</c>, and the scale kept as the f16 value.
/// Output is split for aligned loads: <c>xq [n, cols/4]</c> int (four int8 each, little endian) and
/// <c>xd [n, cols/32]</c> f32 (the f16-rounded scales). One thread per block.
/// </summary>
public static class QuantizeQ8_0Kernel
{
    public static void Kernel(Index1D index, ArrayView<float> x, ArrayView<int> xq, ArrayView<float> xd, int cols)
    {
        int block = index;
        QuantizeBlock(x, (long)block * 32, xq, xd, block);
    }

    /// <summary>
    /// Quantizes the 32 floats at <paramref name="src"/> into block <paramref name="block"/> of xq/xd.
    /// Blocks are numbered along the flat array, which equals per-row numbering when rows are a multiple of 32.
    /// Also called by the fused producers (RMSNorm, SwiGLU, attention) that quantize their own output.
    /// </summary>
    public static void QuantizeBlock(ArrayView<float> x, long src, ArrayView<int> xq, ArrayView<float> xd, long block)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++)
        {
            float v = x[src + j];
            amax = Reductions.Max(amax, v < 0 ? -v : v);
        }
        float id = StoreScale(amax, xd, block);
        for (int w = 0; w < 8; w++)
        {
            int packed = 0;
            for (int k = 0; k < 4; k++)
            {
                int q = RoundHalfAway(x[src + w * 4 + k] * id);
                packed |= (q & 0xff) << (8 * k);
            }
            xq[block * 8 + w] = packed;
        }
    }

    /// <summary>A block's scale d = amax / 127, stored f16-rounded as block <paramref name="block"/> of xd; returns 1 / d (0 for an all-zero block).</summary>
    private static float StoreScale(float amax, ArrayView<float> xd, long block)
    {
        float d = amax / 127f;
        xd[block] = Half16.ToFloat(Half16.FromFloat(d));
        return InverseScale(d);
    }

    /// <summary>The quantization multiplier of scale d: 1 / d, or 0 when the block is all zeros.</summary>
    private static float InverseScale(float d) => d != 0 ? 1f / d : 0f;

    /// <summary>
    /// <see cref="QuantizeBlock"/> of the 32 values <c>x[src + j] * scale * w[wi + j]</c> (an RMSNorm's output, computed here
    /// with RmsNormKernel's arithmetic instead of read back), also written to <c>dst[src + j]</c> when <paramref name="writeDst"/>.
    /// </summary>
    public static void QuantizeScaledBlock(ArrayView<float> x, long src, ArrayView<float> w, int wi, float scale,
        ArrayView<float> dst, bool writeDst, ArrayView<int> xq, ArrayView<float> xd, long block)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++)
        {
            float v = x[src + j] * scale * w[wi + j];
            if (writeDst) dst[src + j] = v;
            amax = Reductions.Max(amax, v < 0 ? -v : v);
        }
        float id = StoreScale(amax, xd, block);
        for (int k4 = 0; k4 < 8; k4++)
        {
            int packed = 0;
            for (int k = 0; k < 4; k++)
            {
                int j = k4 * 4 + k;
                int q = RoundHalfAway(x[src + j] * scale * w[wi + j] * id);
                packed |= (q & 0xff) << (8 * k);
            }
            xq[block * 8 + k4] = packed;
        }
    }

    /// <summary>
    /// Thread-per-element quantize for warps of a multiple of 32 lanes (CUDA): the grid covers
    /// <paramref name="count"/> elements (count % 32 == 0), so each Q8_0 block is 32 consecutive lanes of one
    /// warp and whole warps past the end leave together. 32 lanes load in parallel instead of one thread
    /// walking a block (which was latency bound: ~5 µs for 1.5k elements on an H200).
    /// </summary>
    /// <param name="x">[count] f32</param>
    /// <param name="xq">[count/4] int</param>
    /// <param name="xd">[count/32] f32</param>
    public static void KernelLanes(ArrayView<float> x, ArrayView<int> xq, ArrayView<float> xd, int count)
    {
        int i = Grid.GlobalIndex.X;
        if (i >= count) return;
        QuantizeLane(x[i], i, xq, xd);
    }

    /// <summary>
    /// Quantizes element <paramref name="i"/> (value <paramref name="v"/>) of a flat array whose Q8_0 block
    /// of 32 lies in 32 consecutive lanes of this warp (lane % 32 == i % 32; warp size a multiple of 32).
    /// Every lane of those 32 must call it. Same rounding as <see cref="QuantizeBlock"/>: the block's amax
    /// comes from a 5-step shuffle, and each fourth lane packs its neighbours' bytes into one int.
    /// </summary>
    public static void QuantizeLane(float v, long i, ArrayView<int> xq, ArrayView<float> xd)
    {
        float amax = v < 0 ? -v : v;
        for (int offset = 16; offset > 0; offset >>= 1)
            amax = Reductions.Max(amax, Warp.ShuffleXor(amax, offset));
        float d = amax / 127f;
        float id = InverseScale(d);
        int q = RoundHalfAway(v * id) & 0xff;
        int q1 = Warp.ShuffleDown(q, 1);
        int q2 = Warp.ShuffleDown(q, 2);
        int q3 = Warp.ShuffleDown(q, 3);
        if ((i & 3) == 0) xq[i >> 2] = q | (q1 << 8) | (q2 << 16) | (q3 << 24);
        if ((i & 31) == 0) xd[i >> 5] = Half16.ToFloat(Half16.FromFloat(d));
    }

    /// <summary>C's roundf without a library call: |v| - trunc(|v|) is exact for |v| &lt; 2^23.</summary>
    public static int RoundHalfAway(float v)
    {
        float a = v < 0 ? -v : v;
        int t = (int)a;
        if (a - t >= 0.5f) t++;
        return v < 0 ? -t : t;
    }
}
