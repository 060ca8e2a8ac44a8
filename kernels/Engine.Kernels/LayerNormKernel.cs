using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// LayerNorm of each row, one group per row:
/// <c>dst[r, i] = (x[r, i] − mean_r) / sqrt(var_r + eps) * w[i] + b[i]</c>, var_r the population variance.
/// Two group reductions in f32 (mean, then squared deviations around it: no E[x²] − mean² cancellation);
/// the reference sums in f64, the difference is within <see cref="EncoderKernelTolerances.LayerNorm"/>.
/// dst may equal x: every thread reads the elements it writes, and the reductions' barriers order all
/// reads of a row (its first element, the shift, included) before the first write.
/// </summary>
public static class LayerNormKernel
{
    /// <param name="x">[n, dim] f32</param>
    /// <param name="w">[dim] f32</param>
    /// <param name="b">[dim] f32</param>
    /// <param name="dst">[n, dim] f32</param>
    public static void Kernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> dst, int dim, float eps)
    {
        long row = (long)Grid.IdxX * dim;
        // Shifted by the row's first element, as the CPU backend does: a row far from zero then sums small
        // numbers, and x − shift is exact there (Sterbenz).
        float shift = x[row];
        float sum = 0;
        for (int i = Group.IdxX; i < dim; i += Group.DimX) sum += x[row + i] - shift;
        float mean = Reductions.GroupSum(sum) / dim; // of the shifted values
        float ss = 0;
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
        {
            float d = x[row + i] - shift - mean;
            ss += d * d;
        }
        float inv = 1f / ILGPU.Algorithms.XMath.Sqrt(Reductions.GroupSum(ss) / dim + eps);
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
            dst[row + i] = (x[row + i] - shift - mean) * inv * w[i] + b[i];
    }
}
