using System.Reflection;
using Engine.Kernels.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Tests;

/// <summary>
/// The wide matrix-vector variants (<see cref="MatVecQ8_0Kernel.KernelWide"/>, <see cref="MatVecQ8_0Kernel.KernelWideFour"/>,
/// <see cref="MatVecQ8_0Kernel.KernelWideHalves"/>, <see cref="MatVecQ8_0Kernel.KernelWideHalvesPipelined"/>,
/// <see cref="MatVecQ8_0Kernel.KernelWideHalvesDeep"/>, <see cref="MatVecQ8_0Kernel.RowDotPairWide"/>, and <see cref="MatVecQ8_0Kernel.RowsWide"/> with the input read by 32-bit
/// loads as a fused kernel would call it) against a scalar reference of the Q8_0 product on fresh random blocks, launched as
/// the backend launches its Q8_0 product: one warp per output row, grid (⌈rows / warps per group⌉, n). Devices: ILGPU's CPU
/// accelerator (2-lane and 4-lane warps), the CUDA-shaped CPU device (warp 32, 256-thread groups), and CUDA when present.
/// Shapes: blocks a multiple of 4 (the 64-bit path: 4, 8, 68 = a short row, one pass, several passes with a tail) and not
/// (18 = 576 columns, 3: the pairs fallback), three targets with row counts that are not multiples of the warps per group,
/// two input rows, the first target accumulated into.
/// </summary>
[Collection("ilgpu")]
public class MatVecWideTests
{
    private const int BlockUShorts = Q8Blocks.UShorts; // f16 scale + 32 int8

    private delegate void MatQ8(KernelConfig config, ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p);

    public static TheoryData<string> DeviceNames
    {
        get
        {
            var d = new TheoryData<string> { "cpu2x2", "cpu4x4", "cudashape" };
            if (Devices.CudaPresent) d.Add("cuda");
            return d;
        }
    }

    private static IlgpuDevice Open(string name) => name switch
    {
        "cpu2x2" => IlgpuDevice.CreateCpu(threadsPerWarp: 2, warpsPerGroup: 2),
        "cpu4x4" => IlgpuDevice.CreateCpu(threadsPerWarp: 4, warpsPerGroup: 4),
        "cudashape" => IlgpuDevice.CreateCudaShapedCpu(multiprocessors: 1),
        "cuda" => IlgpuDevice.TryCreateCuda(out var gpu, out string reason) ? gpu : throw new InvalidOperationException(reason),
        _ => throw new ArgumentException(name),
    };

    /// <summary>The fused kernels' form: <see cref="MatVecQ8_0Kernel.RowsWide"/> with xq read by 32-bit loads (shared memory there), quarter blocks.</summary>
    private static void NarrowInputQuarters(ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        MatVecQ8_0Kernel.RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: false, four: false, xWide: false);

    /// <summary>As <see cref="NarrowInputQuarters"/> for half blocks, pipelined.</summary>
    private static void NarrowInputHalves(ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p) =>
        MatVecQ8_0Kernel.RowsWide(w0, w1, w2, y0, y1, y2, xq, xd, p, Grid.IdxY, halves: true, four: false, xWide: false, pipelined: true);

    /// <summary>
    /// The norm-folded kernels' form: the group copies its input row into shared memory (where <see cref="NormMatVecQ8_0Kernel"/>
    /// quantizes it), then <see cref="MatVecQ8_0Kernel.RowsWide"/> reads it with 32-bit loads (xWide false), deep halves.
    /// </summary>
    private static void SharedInputKernel(ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p)
    {
        var sq = SharedMemory.Allocate<int>(SharedMaxBlocks * 8);
        var sd = SharedMemory.Allocate<float>(SharedMaxBlocks);
        long r = Grid.IdxY;
        for (int i = Group.IdxX; i < p.Blocks * 8; i += Group.DimX) sq[i] = xq[r * p.Blocks * 8 + i];
        for (int i = Group.IdxX; i < p.Blocks; i += Group.DimX) sd[i] = xd[r * p.Blocks + i];
        Group.Barrier();
        MatVecQ8_0Kernel.RowsWide(w0, w1, w2, y0, y1, y2, sq, sd, p, xRow: 0, halves: true, four: true, xWide: false, pipelined: true);
    }

    private const int SharedMaxBlocks = 128;

    [Theory, MemberData(nameof(DeviceNames))]
    public void Wide_variants_match_the_scalar_reference_and_the_quarter_forms_equal_their_16_bit_twins(string deviceName)
    {
        using var device = Open(deviceName);
        var a = device.Accelerator;
        MatQ8 Load(Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams> entry)
        {
            var k = a.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, Q8MatParams>(entry);
            return (c, w0, w1, w2, y0, y1, y2, xq, xd, p) => k(c, w0, w1, w2, y0, y1, y2, xq, xd, p);
        }
        var variants = new (string Name, MatQ8 Kernel, MatQ8? Twin)[]
        {
            ("wide pairs", Load(MatVecQ8_0Kernel.KernelWide), Load(MatVecQ8_0Kernel.KernelPairsDp4a)),
            ("wide four", Load(MatVecQ8_0Kernel.KernelWideFour), Load(MatVecQ8_0Kernel.KernelDp4a)),
            ("wide halves", Load(MatVecQ8_0Kernel.KernelWideHalves), null),
            ("wide halves pipelined", Load(MatVecQ8_0Kernel.KernelWideHalvesPipelined), Load(MatVecQ8_0Kernel.KernelWideHalves)),
            ("wide halves deep", Load(MatVecQ8_0Kernel.KernelWideHalvesDeep), null),
            ("wide quarters, 32-bit input loads", Load(NarrowInputQuarters), Load(MatVecQ8_0Kernel.KernelPairsDp4a)),
            ("wide halves pipelined, 32-bit input loads", Load(NarrowInputHalves), Load(MatVecQ8_0Kernel.KernelWideHalves)),
            ("wide halves deep, input in shared memory", Load(SharedInputKernel), Load(MatVecQ8_0Kernel.KernelWideHalvesDeep)),
        };
        int warpsPerGroup = device.GroupSize / a.WarpSize;
        var random = new Random(20261126 + deviceName.Length);
        using var dummyU = a.Allocate1D<ushort>(1);
        using var dummyF = a.Allocate1D<float>(1);
        int[] rows = [7, 5, 3];
        const int n = 2;

        foreach (int blocks in new[] { 4, 8, 68, 18, 3 })
        {
            var w = rows.Select(r => Q8Blocks.Random(random, r, blocks)).ToArray();
            var xq = new int[n * blocks * 8];
            for (int i = 0; i < xq.Length; i++) xq[i] = random.Next(int.MinValue, int.MaxValue);
            var xd = new float[n * blocks];
            for (int i = 0; i < xd.Length; i++) xd[i] = 0.001f + random.NextSingle() * 0.01f;
            var y0Start = new float[n * rows[0]];
            for (int i = 0; i < y0Start.Length; i++) y0Start[i] = random.NextSingle() * 2 - 1;
            var p = new Q8MatParams { Rows0 = rows[0], Rows1 = rows[1], Rows2 = rows[2], Blocks = blocks, Accumulate = 1 };
            var config = new KernelConfig(new Index2D((rows.Sum() + warpsPerGroup - 1) / warpsPerGroup, n), new Index2D(device.GroupSize, 1));
            var expected = Reference(w, rows, blocks, n, xq, xd, y0Start);

            float[][] Run(MatQ8 kernel)
            {
                var gw = w.Select(a.Allocate1D).ToArray();
                using var gq = a.Allocate1D(xq);
                using var gd = a.Allocate1D(xd);
                var gy = rows.Select((r, t) => t == 0 ? a.Allocate1D(y0Start) : a.Allocate1D<float>(n * r)).ToArray();
                try
                {
                    kernel(config, gw[0].View, gw[1].View, gw[2].View, gy[0].View, gy[1].View, gy[2].View, gq.View, gd.View, p);
                    a.Synchronize();
                    return gy.Select(y => y.GetAsArray1D()).ToArray();
                }
                finally
                {
                    foreach (var b in gw) b.Dispose();
                    foreach (var b in gy) b.Dispose();
                }
            }

            foreach (var (name, kernel, twin) in variants)
            {
                var actual = Run(kernel);
                var same = twin is null ? null : Run(twin);
                for (int t = 0; t < rows.Length; t++)
                {
                    double err = HostTensors.NormalizedError(actual[t], expected[t]);
                    Assert.True(err <= KernelTolerances.Q8MatMul,
                        $"{deviceName} {name} blocks={blocks} target {t}: normalized error {err:E3} > {KernelTolerances.Q8MatMul:E1}");
                    // The quarter forms sum the same int32 dots in the same order as their 16-bit twins, the pipelined halves as
                    // the plain ones: equal bit for bit.
                    if (same is not null) Assert.Equal(same[t], actual[t]);
                }
            }
        }
    }

    /// <summary>
    /// Gate and up rows as <see cref="GateUpSwiGluKernel"/> computes them: <paramref name="mode"/> 0 = <see cref="MatVecQ8_0Kernel.RowDotPair"/>,
    /// 1 = <see cref="MatVecQ8_0Kernel.RowDotPairWide"/> (64-bit input loads), 2 = the same with 32-bit input loads. One warp per row.
    /// </summary>
    private static void PairKernel(ArrayView<ushort> wg, ArrayView<ushort> wu, ArrayView<float> y, ArrayView<int> xq, ArrayView<float> xd,
        int rows, int blocks, int mode)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        int r = Grid.IdxY;
        if (row >= rows) return;
        var pr = mode == 0 ? MatVecQ8_0Kernel.RowDotPair(wg, wu, row, xq, xd, r, blocks, asm: true)
            : MatVecQ8_0Kernel.RowDotPairWide(wg, wu, row, xq, xd, r, blocks, xWide: mode == 1);
        if (Warp.IsFirstLane)
        {
            y[((long)r * rows + row) * 2] = pr.A;
            y[((long)r * rows + row) * 2 + 1] = pr.B;
        }
    }

    [Theory, MemberData(nameof(DeviceNames))]
    public void Wide_gate_up_pair_matches_the_scalar_reference_and_equals_RowDotPair(string deviceName)
    {
        using var device = Open(deviceName);
        var a = device.Accelerator;
        var kernel = a.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(PairKernel);
        int warpsPerGroup = device.GroupSize / a.WarpSize;
        var random = new Random(20261127 + deviceName.Length);
        const int rows = 9, n = 2;
        foreach (int blocks in new[] { 8, 68, 18 })
        {
            var wg = Q8Blocks.Random(random, rows, blocks);
            var wu = Q8Blocks.Random(random, rows, blocks);
            var xq = new int[n * blocks * 8];
            for (int i = 0; i < xq.Length; i++) xq[i] = random.Next(int.MinValue, int.MaxValue);
            var xd = new float[n * blocks];
            for (int i = 0; i < xd.Length; i++) xd[i] = 0.001f + random.NextSingle() * 0.01f;
            var expected = Reference([wg, wu], [rows, rows], blocks, n, xq, xd, new float[n * rows]);
            using var gg = a.Allocate1D(wg);
            using var gu = a.Allocate1D(wu);
            using var gq = a.Allocate1D(xq);
            using var gd = a.Allocate1D(xd);
            using var gy = a.Allocate1D<float>(n * rows * 2);
            var config = new KernelConfig(new Index2D((rows + warpsPerGroup - 1) / warpsPerGroup, n), new Index2D(device.GroupSize, 1));
            float[] Run(int mode)
            {
                gy.MemSetToZero();
                kernel(config, gg.View, gu.View, gy.View, gq.View, gd.View, rows, blocks, mode);
                a.Synchronize();
                return gy.GetAsArray1D();
            }
            var pair = Run(0);
            foreach (int mode in new[] { 1, 2 })
            {
                var wide = Run(mode);
                Assert.Equal(pair, wide); // same items, same order: bit for bit
                for (int t = 0; t < 2; t++)
                {
                    var got = Enumerable.Range(0, n * rows).Select(i => wide[i * 2 + t]).ToArray();
                    double err = HostTensors.NormalizedError(got, expected[t]);
                    Assert.True(err <= KernelTolerances.Q8MatMul, $"{deviceName} mode {mode} blocks={blocks} {(t == 0 ? "gate" : "up")}: normalized error {err:E3}");
                }
            }
        }
    }

    /// <summary>
    /// <c>y_t [n, rows_t] = Σ_b d_w · d_x · Σ_j w_j x_j</c> in f64 from the file's bytes (target 0 added to its start values):
    /// the Q8_0 product the kernels compute, written out element by element.
    /// </summary>
    private static float[][] Reference(ushort[][] w, int[] rows, int blocks, int n, int[] xq, float[] xd, float[] y0Start)
    {
        var y = new float[rows.Length][];
        for (int t = 0; t < rows.Length; t++)
        {
            y[t] = new float[n * rows[t]];
            for (int r = 0; r < n; r++)
            for (int row = 0; row < rows[t]; row++)
            {
                double s = t == 0 ? y0Start[r * rows[t] + row] : 0;
                for (int b = 0; b < blocks; b++)
                {
                    int at = (row * blocks + b) * BlockUShorts;
                    double dw = (double)BitConverter.UInt16BitsToHalf(w[t][at]);
                    long dot = 0;
                    for (int j = 0; j < 32; j++)
                    {
                        var wj = (sbyte)(w[t][at + 1 + j / 2] >> (8 * (j & 1)));
                        var xj = (sbyte)(xq[(r * blocks + b) * 8 + j / 4] >> (8 * (j & 3)));
                        dot += wj * xj;
                    }
                    s += dw * xd[r * blocks + b] * dot;
                }
                y[t][r * rows[t] + row] = (float)s;
            }
        }
        return y;
    }

    /// <summary>Q8_0 rows as in the file: per block an f16 scale (small, positive) and 32 random int8.</summary>
    /// <summary>The fused kernels' call forms (input in shared memory; gate/up pairs) reach PTX for sm_90 at O2 too.</summary>
    [Theory]
    [InlineData(nameof(SharedInputKernel))]
    [InlineData(nameof(PairKernel))]
    public void Fused_call_forms_compile_to_ptx(string kernel)
    {
        string ptx = PtxCompiler.CompileOne(typeof(MatVecWideTests).GetMethod(kernel, BindingFlags.NonPublic | BindingFlags.Static)!, OptimizationLevel.O2);
        Assert.Contains("dp4a", ptx);
        Assert.Matches(@"ld(\.global)?\.[ub]64\s", ptx);
    }

    /// <summary>The wide kernels reach PTX for sm_90 with 64-bit global loads of the weights and dp4a (no 16-bit quant loads left but the fallback's).</summary>
    [Theory]
    [InlineData(nameof(MatVecQ8_0Kernel.KernelWide))]
    [InlineData(nameof(MatVecQ8_0Kernel.KernelWideFour))]
    [InlineData(nameof(MatVecQ8_0Kernel.KernelWideHalves))]
    [InlineData(nameof(MatVecQ8_0Kernel.KernelWideHalvesPipelined))]
    [InlineData(nameof(MatVecQ8_0Kernel.KernelWideHalvesDeep))]
    public void Wide_kernel_compiles_to_ptx_with_64_bit_loads(string kernel)
    {
        // O2, as IlgpuDevice compiles for CUDA.
        string ptx = PtxCompiler.CompileOne(typeof(MatVecQ8_0Kernel).GetMethod(kernel, BindingFlags.Public | BindingFlags.Static)!,
            OptimizationLevel.O2, dumpName: $"MatVecQ8_0Kernel.{kernel}.O2");
        Assert.Contains(".entry", ptx);
        Assert.Contains("dp4a", ptx);
        Assert.Matches(@"ld(\.global)?\.[ub]64\s", ptx); // O2: ld.global.b64 (O1 emits generic ld.b64)
    }
}
