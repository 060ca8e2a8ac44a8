using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// RMSNorm of each row, one group per row: <c>dst[r, i] = x[r, i] / sqrt(mean(x[r]²) + eps) * w[i]</c>.
/// The sum of squares is f32 here (the reference sums in double, as ggml): the difference is within the
/// op's tolerance. dst may equal x (each element is read before it is written by the same thread).
/// </summary>
public static class RmsNormKernel
{
    /// <param name="x">[n, dim] f32</param>
    /// <param name="w">[dim] f32</param>
    /// <param name="dst">[n, dim] f32</param>
    public static void Kernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> dst, int dim, float eps)
    {
        long row = (long)Grid.IdxX * dim;
        float ss = 0;
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
        {
            float v = x[row + i];
            ss += v * v;
        }
        ss = Reductions.GroupSum(ss);
        float scale = 1f / XMathSqrt(ss / dim + eps);
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
            dst[row + i] = x[row + i] * scale * w[i];
    }

    private static float XMathSqrt(float v) => ILGPU.Algorithms.XMath.Sqrt(v);
}
