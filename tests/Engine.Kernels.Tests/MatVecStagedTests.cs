using Engine.Kernels.Testing;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Tests;

/// <summary>
/// <see cref="MatVecQ8_0Kernel.KernelStaged"/> (weight rows staged through shared memory with 32-bit loads)
/// against the portable <see cref="MatVecQ8_0Kernel.Kernel"/> on ILGPU's CPU accelerator, launched as the
/// backend launches its Q8_0 product: one warp per output row, grid (⌈rows / warps per group⌉, n), group = the
/// device's group size.
/// </summary>
[Collection("ilgpu")]
public class MatVecStagedTests
{
    /// <summary>Both kernels sum the same int32 quarter-block dots in the same order: the only slack is f32 rounding, and there is none by design.</summary>
    private const double StagedVsPortable = 1e-6;

    private const int BlockUShorts = Q8Blocks.UShorts; // f16 scale + 32 int8

    private delegate void MatQ8(KernelConfig config, ArrayView<ushort> w0, ArrayView<ushort> w1, ArrayView<ushort> w2,
        ArrayView<float> y0, ArrayView<float> y1, ArrayView<float> y2, ArrayView<int> xq, ArrayView<float> xd, Q8MatParams p);

    public static TheoryData<int, int> Warps => new()
    {
        { 2, 2 },  // the suite's default CPU device: 2-lane warps, 2 warps per group
        { 32, 1 }, // CUDA-width warps
        { 4, 8 },  // as many warps per group as there are shared slices
        { 2, 16 }, // more warps than slices: the last eight take the per-lane path
    };

    [Theory, MemberData(nameof(Warps))]
    public void Staged_equals_portable_for_even_and_odd_blocks_targets_rows_and_accumulate(int lanes, int warps) =>
        VariantEqualsPortable(lanes, warps, MatVecQ8_0Kernel.KernelStaged);

    [Theory, MemberData(nameof(Warps))]
    public void Pairs_variants_equal_portable(int lanes, int warps)
    {
        VariantEqualsPortable(lanes, warps, MatVecQ8_0Kernel.KernelPairs);
        VariantEqualsPortable(lanes, warps, MatVecQ8_0Kernel.KernelPairsDp4a);
    }

    private static void VariantEqualsPortable(int lanes, int warps, Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, Q8MatParams> variant)
    {
        using var device = IlgpuDevice.CreateCpu(threadsPerWarp: lanes, warpsPerGroup: warps);
        var a = device.Accelerator;
        var portable = a.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams>(MatVecQ8_0Kernel.Kernel);
        var staged = a.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams>(variant);
        int warpsPerGroup = device.GroupSize / a.WarpSize;
        var random = new Random(20261126 + lanes * 100 + warps);
        using var dummyU = a.Allocate1D<ushort>(1);
        using var dummyF = a.Allocate1D<float>(1);

        // 2 and 3 blocks: one short chunk; 66 and 131: a full 64-block chunk then a short one (131 odd: per-lane path).
        foreach (int blocks in new[] { 2, 3, 66, 131 })
        foreach (int targets in new[] { 1, 2, 3 })
        foreach (int n in new[] { 1, 3 })
        foreach (int accumulate in new[] { 0, 1 })
        {
            int[] rows = new[] { 7, 5, 3 }[..targets];
            var w = rows.Select(r => Q8Blocks.Random(random, r, blocks)).ToArray();
            var xq = new int[n * blocks * 8];
            for (int i = 0; i < xq.Length; i++) xq[i] = random.Next(int.MinValue, int.MaxValue);
            var xd = new float[n * blocks];
            for (int i = 0; i < xd.Length; i++) xd[i] = 0.001f + random.NextSingle() * 0.01f;
            var y0Start = new float[n * rows[0]];
            for (int i = 0; i < y0Start.Length; i++) y0Start[i] = random.NextSingle() * 2 - 1;
            var p = new Q8MatParams
            {
                Rows0 = rows[0],
                Rows1 = targets > 1 ? rows[1] : 0,
                Rows2 = targets > 2 ? rows[2] : 0,
                Blocks = blocks,
                Accumulate = accumulate,
            };
            int totalRows = p.Rows0 + p.Rows1 + p.Rows2;
            var config = new KernelConfig(new Index2D((totalRows + warpsPerGroup - 1) / warpsPerGroup, n), new Index2D(device.GroupSize, 1));

            float[][] Run(Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, Q8MatParams> kernel)
            {
                var gw = w.Select(a.Allocate1D).ToArray();
                using var gq = a.Allocate1D(xq);
                using var gd = a.Allocate1D(xd);
                var gy = rows.Select((r, t) => t == 0 ? a.Allocate1D(y0Start) : a.Allocate1D<float>(n * r)).ToArray();
                try
                {
                    kernel(config, gw[0].View, targets > 1 ? gw[1].View : dummyU.View, targets > 2 ? gw[2].View : dummyU.View,
                        gy[0].View, targets > 1 ? gy[1].View : dummyF.View, targets > 2 ? gy[2].View : dummyF.View, gq.View, gd.View, p);
                    a.Synchronize();
                    return gy.Select(y => y.GetAsArray1D()).ToArray();
                }
                finally
                {
                    foreach (var b in gw) b.Dispose();
                    foreach (var b in gy) b.Dispose();
                }
            }

            var expected = Run(portable);
            var actual = Run(staged);
            for (int t = 0; t < targets; t++)
            {
                double err = HostTensors.NormalizedError(actual[t], expected[t]);
                Assert.True(err <= StagedVsPortable,
                    $"lanes={lanes} warps={warps} blocks={blocks} targets={targets} n={n} acc={accumulate} target {t}: normalized error {err:E3} > {StagedVsPortable:E1}");
            }
        }
    }

    /// <summary>Q8_0 rows as in the file: per block an f16 scale (small, positive) and 32 random int8.</summary>
    [Fact]
    public void KernelStaged_compiles_to_ptx_for_sm_90()
    {
        string ptx = PtxCompiler.CompileOne(typeof(MatVecQ8_0Kernel).GetMethod(nameof(MatVecQ8_0Kernel.KernelStaged))!);
        Assert.Contains(".entry", ptx);
        Assert.Contains(".shared", ptx);      // the staging slices
        Assert.Contains("ld.shared.b32", ptx); // quarter blocks read back from the slices
        Assert.Contains("bar.warp.sync", ptx); // Warp.Barrier between staging and reading
        Assert.Contains("dp4a", ptx);
    }
}
