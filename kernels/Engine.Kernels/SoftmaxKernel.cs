using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// Row-wise softmax in place, one group per row, in f32: max (group reduction), e = exp(x − max) written
/// back with its sum (group reduction), then e / Σe. Each thread rewrites only the elements it read.
/// </summary>
public static class SoftmaxKernel
{
    /// <param name="x">[n, dim] f32, in place</param>
    public static void Kernel(ArrayView<float> x, int dim)
    {
        long row = (long)Grid.IdxX * dim;
        float localMax = float.NegativeInfinity;
        for (int i = Group.IdxX; i < dim; i += Group.DimX) localMax = Reductions.Max(localMax, x[row + i]);
        float max = Reductions.GroupMax(localMax);
        float localSum = 0;
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
        {
            float e = ILGPU.Algorithms.XMath.Exp(x[row + i] - max);
            x[row + i] = e;
            localSum += e;
        }
        float sum = Reductions.GroupSum(localSum);
        for (int i = Group.IdxX; i < dim; i += Group.DimX) x[row + i] = x[row + i] / sum;
    }
}
