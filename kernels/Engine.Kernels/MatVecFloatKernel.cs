using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape and element type of an f32/f16/bf16 weight product.</summary>
public struct FloatMatParams
{
    public int Rows, Cols;

    /// <summary>ggml type number: 0 F32, 1 F16, 30 BF16.</summary>
    public int Type;
}

/// <summary>
/// <c>y [n, rows] = x [n, cols] · Wᵀ</c> for F32, F16 and BF16 weights, in f32. One warp per output row;
/// lanes stride along the row (coalesced); grid Y = the input row.
/// </summary>
public static class MatVecFloatKernel
{
    /// <param name="wf">the weight as f32 (F32 only; a dummy otherwise)</param>
    /// <param name="wh">the weight as ushort (F16/BF16; a dummy otherwise)</param>
    /// <param name="x">[n, cols] f32</param>
    /// <param name="y">[n, rows] f32</param>
    public static void Kernel(ArrayView<float> wf, ArrayView<ushort> wh, ArrayView<float> x, ArrayView<float> y, FloatMatParams p)
    {
        int warpsPerGroup = Group.DimX / Warp.WarpSize;
        int row = Grid.IdxX * warpsPerGroup + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row >= p.Rows) return; // uniform across the warp
        long xBase = (long)r * p.Cols;
        float sum = 0;
        for (int i = Warp.LaneIdx; i < p.Cols; i += Warp.WarpSize)
            sum += WeightElements.Read(wf, wh, p.Type, row, i, p.Cols) * x[xBase + i];
        sum = Reductions.WarpSum(sum);
        if (Warp.IsFirstLane) y[(long)r * p.Rows + row] = sum;
    }
}
