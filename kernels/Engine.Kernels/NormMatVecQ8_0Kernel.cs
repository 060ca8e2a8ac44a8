using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shapes of an RMSNorm folded into a Q8_0 product of up to three weights (<see cref="NormMatVecQ8_0Kernel"/>).</summary>
public struct NormMatParams
{
    /// <summary>Rows of targets 0, 1, 2 (0 for an absent target).</summary>
    public int Rows0, Rows1, Rows2;

    /// <summary>Q8_0 blocks per row (cols / 32); cols ≤ <see cref="NormMatVecQ8_0Kernel.MaxCols"/>.</summary>
    public int Blocks;

    /// <summary>The RMSNorm's epsilon.</summary>
    public float Eps;

    /// <summary>1: the prologue quantizes a thread per element (warps of 32 lanes: CUDA); 0: a thread per block of 32.</summary>
    public int Lanes;

    /// <summary>Threads that sum the norm's squares: the unfused RMSNorm's group size (≤ this launch's), see <see cref="RmsNormKernel.InverseRms"/>.</summary>
    public int NormThreads;

    /// <summary>1: the rows by the wide loop (<see cref="MatVecQ8_0Kernel.RowsWide"/>, "wide halves": 64-bit weight loads; rows of a multiple of 4 blocks); 0: pairs + dp4a.</summary>
    public int Wide;
}

/// <summary>
/// RMSNorm + quantize + <see cref="MatVecQ8_0Kernel"/> in one launch (a decode step's norm before q/k/v, and the final norm
/// before the output head): <c>dst [n, cols] = RMSNorm(x) · norm</c>, <c>y_t [n, rows_t] = Q8(dst) · W_tᵀ</c>. Each group
/// first normalizes and quantizes its input row (x is only cols floats, read from L2 by every group) into shared memory
/// (<see cref="RmsNormKernel.NormQuantizeRow"/>: the arithmetic of <see cref="RmsNormKernel.KernelQuantize"/>, so the int8
/// activations are those of the unfused ops), then does its rows as <see cref="MatVecQ8_0Kernel.KernelPairsDp4a"/> (one
/// warp per row, two quarter blocks in flight, dp4a on CUDA). Groups of grid X = 0 also write dst, so the buffer holds what
/// the unfused RMSNorm leaves. Grid: (rows / warps per group, n); x, dst and the outputs must not overlap.
/// Static shared memory: <see cref="MaxCols"/> / 4 ints + <see cref="MaxCols"/> / 32 floats = 9 KB per group.
/// </summary>
public static class NormMatVecQ8_0Kernel
{
    /// <summary>Widest normalized row the shared-memory prologue holds (Llama-70B's 8192); wider rows take the unfused ops.</summary>
    public const int MaxCols = 8192;

    /// <param name="x">[n, cols] f32: the residual stream.</param>
    /// <param name="norm">[cols] f32: the norm weight.</param>
    /// <param name="dst">[n, cols] f32: the normalized rows (written by the groups of grid X = 0).</param>
    /// <param name="w0">[rows0, blocks * 17] ushort: Q8_0 blocks as in the file.</param>
    /// <param name="y0">[n, rows0] f32.</param>
    public static void Kernel(ArrayView<float> x, ArrayView<float> norm, ArrayView<float> dst,
        ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, NormMatParams p)
    {
        var sq = SharedMemory.Allocate<int>(MaxCols / 4);   // [cols/4] int: this row in Q8_0
        var sd = SharedMemory.Allocate<float>(MaxCols / 32); // [cols/32] f32: its block scales
        int cols = p.Blocks * 32;
        RmsNormKernel.NormQuantizeRow(x, norm, dst, Grid.IdxX == 0, sq, sd, Grid.IdxY, cols, p.Eps, p.Lanes != 0, p.NormThreads);
        var m = new Q8MatParams { Rows0 = p.Rows0, Rows1 = p.Rows1, Rows2 = p.Rows2, Blocks = p.Blocks };
        if (p.Wide != 0)
            MatVecQ8_0Kernel.RowsWide(w0, w1, w2, y0, y1, y2, sq, sd, m, xRow: 0, halves: true, four: false, xWide: false);
        else
            MatVecQ8_0Kernel.Rows(w0, w1, w2, y0, y1, y2, sq, sd, m, xRow: 0, asm: true, four: false);
    }
}
