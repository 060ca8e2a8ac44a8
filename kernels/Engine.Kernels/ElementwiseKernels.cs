using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>SwiGLU: <c>dst[i] = silu(gate[i]) * up[i]</c>, silu(x) = x / (1 + e^-x). dst may equal gate.</summary>
public static class SwiGluKernel
{
    public static void Kernel(Index1D i, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> dst)
    {
        float g = gate[i];
        dst[i] = g / (1f + ILGPU.Algorithms.XMath.Exp(-g)) * up[i];
    }
}

/// <summary>
/// SwiGLU fused with Q8_0 quantization of its output, one thread per block of 32 elements (count % 32 == 0):
/// the down projection that follows then skips its quantize launch. dst may equal gate.
/// </summary>
public static class SwiGluQuantizeKernel
{
    /// <param name="xq">[count/4] int</param>
    /// <param name="xd">[count/32] f32</param>
    public static void Kernel(Index1D block, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> dst, ArrayView<int> xq, ArrayView<float> xd)
    {
        long start = (long)(int)block * 32;
        for (int j = 0; j < 32; j++)
        {
            float g = gate[start + j];
            dst[start + j] = g / (1f + ILGPU.Algorithms.XMath.Exp(-g)) * up[start + j];
        }
        QuantizeQ8_0Kernel.QuantizeBlock(dst, start, xq, xd, (int)block);
    }

    /// <summary>
    /// The same, one thread per element, for warps of a multiple of 32 lanes (CUDA): see
    /// <see cref="QuantizeQ8_0Kernel.QuantizeLane"/>. The grid covers count (count % 32 == 0) rounded up to groups.
    /// </summary>
    public static void KernelLanes(ArrayView<float> gate, ArrayView<float> up, ArrayView<float> dst, ArrayView<int> xq, ArrayView<float> xd, int count)
    {
        int i = Grid.GlobalIndex.X;
        if (i >= count) return; // whole warps: count % 32 == 0
        float g = gate[i];
        float v = g / (1f + ILGPU.Algorithms.XMath.Exp(-g)) * up[i];
        dst[i] = v;
        QuantizeQ8_0Kernel.QuantizeLane(v, i, xq, xd);
    }
}

/// <summary>Residual add in place: <c>x[i] += y[i]</c>.</summary>
public static class AddKernel
{
    public static void Kernel(Index1D i, ArrayView<float> x, ArrayView<float> y) => x[i] += y[i];
}

/// <summary>Bias add per row: <c>y[r, i] += bias[i]</c> on <c>y [n, cols]</c>.</summary>
public static class AddBiasKernel
{
    public static void Kernel(Index1D i, ArrayView<float> y, ArrayView<float> bias, int cols) => y[i] += bias[i % cols];
}

/// <summary>
/// Embedding gather: <c>dst [n, cols]</c> = rows <c>tokens</c> of the table, dequantized to f32; one
/// thread per output element. When n is 1 the token comes as a scalar (no upload per decode step),
/// unless it is negative: then it is read from <c>tokens[0]</c> (graph replay: a device value written before each replay).
/// </summary>
public static class EmbedKernel
{
    /// <param name="tf">table as f32 (F32) or dummy</param>
    /// <param name="th">table as ushort (F16, BF16, Q8_0) or dummy</param>
    public static void Kernel(Index1D idx, ArrayView<float> tf, ArrayView<ushort> th, ArrayView<int> tokens, ArrayView<float> dst,
        int token0, int n, int cols, int type)
    {
        int r = idx / cols;
        int i = idx % cols;
        int token = n == 1 && token0 >= 0 ? token0 : tokens[r];
        dst[idx] = WeightElements.Read(tf, th, type, token, i, cols);
    }
}
