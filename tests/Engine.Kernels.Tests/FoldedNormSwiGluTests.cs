using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// The RMSNorm folded into the following Q8_0 product (<see cref="NormMatVecQ8_0Kernel"/>) and SwiGLU folded into the
/// gate/up product's epilogue (<see cref="GateUpSwiGluKernel"/>), reached through the backend's deferral of RmsNorm and
/// of MatMul([gate, up]) (IlgpuBackend.Fusion.cs). Each folded op is compared with the scalar reference run on the
/// folded op's own inputs (so both quantize the same f32 values) with the unfused ops' named tolerances, and with the
/// same backend with the folds off; and every buffer the unfused ops write must hold the same after the folded form.
/// </summary>
[Collection("ilgpu")]
public class FoldedNormSwiGluTests
{
    private const float Eps = 1e-5f;

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    /// <summary>
    /// Runs <paramref name="body"/> with the folds set as given, restoring the backend's settings after. On cpu32 (32-lane
    /// warps) the folded kernels take CUDA's thread-per-element quantization (<see cref="IlgpuBackend.FoldLanes"/>).
    /// </summary>
    private static T With<T>(IlgpuBackend gpu, bool norm, bool swiGlu, Func<T> body)
    {
        var (n0, s0, l0) = (gpu.FusedNorm, gpu.FusedSwiGlu, gpu.FoldLanes);
        gpu.FusedNorm = norm;
        gpu.FusedSwiGlu = swiGlu;
        gpu.FoldLanes = gpu.Device.Accelerator.WarpSize == 32;
        try
        {
            Assert.Equal((norm, swiGlu), (gpu.FusedNorm, gpu.FusedSwiGlu));
            return body();
        }
        finally
        {
            gpu.FusedNorm = n0;
            gpu.FusedSwiGlu = s0;
            gpu.FoldLanes = l0;
        }
    }

    [Theory, InlineData("cpu"), InlineData("cpu32"), InlineData(Devices.CudaShaped)]
    public void Norm_folded_into_one_and_three_products_matches_the_reference_in_one_launch(string device)
    {
        var gpu = Devices.Get(device);
        if (device == Devices.CudaShaped) Assert.True(gpu.FoldLanes, "the CUDA-shaped device takes CUDA's per-lane quantizing by itself");
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(71);
        const int dim = 128; // 4 blocks (the wide row loop, FusedWide); wider than the CPU devices' groups
        var normView = t.Create("norm", GgmlType.F32, 1, dim);
        var views = new[] { t.Create("q", GgmlType.Q8_0, 40, dim, 0.5f), t.Create("k", GgmlType.Q8_0, 9, dim, 0.5f), t.Create("v", GgmlType.Q8_0, 9, dim, 0.5f) };
        using var gNorm = gpu.LoadWeight(normView);
        var gw = views.Select(gpu.LoadWeight).ToArray();
        var cw = views.Select(cpu.LoadWeight).ToArray();
        // The CUDA-shaped device (256-thread groups of OS threads: slow) runs decode's n = 1 only.
        foreach (int n in device == Devices.CudaShaped ? new[] { 1 } : new[] { 1, 3 })
        foreach (int targets in new[] { 1, 3 })
        {
            var x = t.Floats(n * dim, 3f);
            float[][] Run(bool fold, out long launches)
            {
                long l = 0;
                var result = With(gpu, fold, fold, () =>
                {
                    using var gx = Upload(gpu, x);
                    using var gxb = gpu.Allocate(n * dim);
                    var outs = gw.Take(targets).Select(w => gpu.Allocate(n * w.Rows)).ToArray();
                    long before = gpu.KernelLaunches;
                    gpu.RmsNorm(gx, gNorm, gxb, n, dim, Eps);
                    gpu.MatMul(gxb, n, outs.Select((o, i) => new MatMulTarget(gw[i], o)).ToArray());
                    l = gpu.KernelLaunches - before;
                    var r = new[] { ReadAll(gpu, gxb) }.Concat(outs.Select(o => ReadAll(gpu, o))).ToArray();
                    foreach (var o in outs) o.Dispose();
                    return r;
                });
                launches = l;
                return result;
            }
            var folded = Run(true, out long foldedLaunches);
            var unfolded = Run(false, out long unfoldedLaunches);
            Assert.Equal((1L, 2L), (foldedLaunches, unfoldedLaunches));
            string what = $"n={n}, {targets} target(s)";

            var cxb = cpu.Allocate(n * dim);
            cpu.RmsNorm(Upload(cpu, x), cpu.LoadWeight(normView), cxb, n, dim, Eps);
            AssertClose(folded[0], ReadAll(cpu, cxb), KernelTolerances.RmsNorm, "normed x, " + what);
            Assert.Equal(unfolded[0], folded[0]); // the same arithmetic as the unfused kernel
            var cOuts = cw.Take(targets).Select(w => new MatMulTarget(w, cpu.Allocate(n * w.Rows))).ToArray();
            cpu.MatMul(Upload(cpu, folded[0]), n, cOuts);
            for (int i = 0; i < targets; i++)
            {
                AssertClose(folded[1 + i], ReadAll(cpu, cOuts[i].Output), KernelTolerances.Q8MatMul, $"product {i}, {what}");
                AssertClose(folded[1 + i], unfolded[1 + i], KernelTolerances.Q8MatMul, $"product {i} folded vs not, {what}");
            }
        }
        foreach (var w in gw) w.Dispose();
    }

    // spread: one gate/up output per warp, the block's last group quantizing h (on cpu32 a group is one warp: 32 groups a
    // block); false: 32-output groups. The CUDA-shaped device runs two groups at once, so blocks finish concurrently there.
    [Theory, InlineData("cpu", true, true), InlineData("cpu", false, true), InlineData("cpu32", true, true), InlineData("cpu32", false, false),
     InlineData(Devices.CudaShaped, true, true), InlineData(Devices.CudaShaped, true, false)]
    public void SwiGlu_folded_into_gate_up_matches_the_reference_and_feeds_the_down_projection(string device, bool foldNorm, bool spread)
    {
        var gpu = Devices.Get(device);
        bool spread0 = gpu.GateUpSpread;
        gpu.GateUpSpread = spread;
        try
        {
            SwiGluFolded(gpu, device, foldNorm);
            // Every block's counter is back at zero for the next launch (and graph replay).
            Assert.All(gpu.GateUpCounterValues(), c => Assert.Equal(0, c));
        }
        finally
        {
            gpu.GateUpSpread = spread0;
        }
    }

    private static void SwiGluFolded(IlgpuBackend gpu, string device, bool foldNorm)
    {
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(72);
        const int dim = 128, ffn = 96; // 3 blocks of 32 outputs; 4 blocks a row: the wide row loop (FusedWide)
        var normView = t.Create("norm", GgmlType.F32, 1, dim);
        var gateView = t.Create("gate", GgmlType.Q8_0, ffn, dim, 0.5f);
        var upView = t.Create("up", GgmlType.Q8_0, ffn, dim, 0.5f);
        var downView = t.Create("down", GgmlType.Q8_0, dim, ffn, 0.5f);
        using var gNorm = gpu.LoadWeight(normView);
        using var gGate = gpu.LoadWeight(gateView);
        using var gUp = gpu.LoadWeight(upView);
        using var gDown = gpu.LoadWeight(downView);
        foreach (int n in device == Devices.CudaShaped ? new[] { 1 } : new[] { 1, 3 })
        {
            var x = t.Floats(n * dim, 3f);
            var residual = t.Floats(n * dim, 1f);
            // [xb, gate (then h), up, residual after the down projection]
            float[][] Run(bool fold, out long launches)
            {
                long l = 0;
                var result = With(gpu, fold && foldNorm, fold, () =>
                {
                    using var gx = Upload(gpu, x);
                    using var gr = Upload(gpu, residual);
                    using var gxb = gpu.Allocate(n * dim);
                    using var gg = gpu.Allocate(n * ffn);
                    using var gu = gpu.Allocate(n * ffn);
                    using var scratch = gpu.Allocate(n * dim);
                    long before = gpu.KernelLaunches;
                    gpu.RmsNorm(gx, gNorm, gxb, n, dim, Eps);
                    gpu.MatMul(gxb, n, [new(gGate, gg), new(gUp, gu)]);
                    gpu.SwiGlu(gg, gu, gg, n * ffn);
                    gpu.MatMulAdd(gg, n, new MatMulTarget(gDown, scratch), gr);
                    l = gpu.KernelLaunches - before;
                    return new[] { ReadAll(gpu, gxb), ReadAll(gpu, gg), ReadAll(gpu, gu), ReadAll(gpu, gr) };
                });
                launches = l;
                return result;
            }
            var folded = Run(true, out long foldedLaunches);
            var unfolded = Run(false, out long unfoldedLaunches);
            // Unfolded: norm+quantize, gate/up, swiglu+quantize, down +=. Folded: (norm+)gate/up+swiglu+quantize, down +=.
            Assert.Equal((foldNorm ? 2L : 3L, 4L), (foldedLaunches, unfoldedLaunches));
            string what = $"n={n}, norm {(foldNorm ? "folded" : "separate")}";
            Assert.Equal(unfolded[0], folded[0]);

            // g and u: the reference product of the folded form's own normed input; h: the reference SwiGLU of them.
            var cg = cpu.Allocate(n * ffn);
            var cu = cpu.Allocate(n * ffn);
            cpu.MatMul(Upload(cpu, folded[0]), n, [new(cpu.LoadWeight(gateView), cg), new(cpu.LoadWeight(upView), cu)]);
            AssertClose(folded[2], ReadAll(cpu, cu), KernelTolerances.Q8MatMul, "up, " + what);
            var ch = cpu.Allocate(n * ffn);
            cpu.SwiGlu(cg, cu, ch, n * ffn);
            AssertClose(folded[1], ReadAll(cpu, ch), KernelTolerances.Q8MatMul + KernelTolerances.SwiGlu, "silu(gate)·up, " + what);
            AssertClose(folded[1], unfolded[1], KernelTolerances.Q8MatMul, "silu(gate)·up folded vs not, " + what);

            // The down projection read the folded kernel's Q8_0 h: the reference quantizes the f32 h itself.
            var cr = Upload(cpu, residual);
            var cy = cpu.Allocate(n * dim);
            cpu.MatMul(Upload(cpu, folded[1]), n, [new(cpu.LoadWeight(downView), cy)]);
            cpu.Add(cr, cy, n * dim);
            AssertClose(folded[3], ReadAll(cpu, cr), KernelTolerances.Q8MatMul, "residual after down, " + what);
        }
    }

    /// <summary>
    /// A norm before a product past <see cref="IlgpuBackend.FoldNormMaxRows"/> runs as its own launch (and is not dropped
    /// when the gate/up product is deferred for its SwiGLU): the normed buffer, g/u/h and the launches are the unfolded ones.
    /// </summary>
    [Theory, InlineData("cpu"), InlineData(Devices.CudaShaped)]
    public void A_norm_before_a_product_past_the_fold_row_limit_runs_on_its_own(string device)
    {
        var gpu = Devices.Get(device);
        using var t = new HostTensors(73);
        const int dim = 64, ffn = 96;
        using var gNorm = gpu.LoadWeight(t.Create("norm", GgmlType.F32, 1, dim));
        using var gGate = gpu.LoadWeight(t.Create("gate", GgmlType.Q8_0, ffn, dim, 0.5f));
        using var gUp = gpu.LoadWeight(t.Create("up", GgmlType.Q8_0, ffn, dim, 0.5f));
        var x = t.Floats(dim, 3f);
        float[][] Run(bool fold, int maxRows, out long launches)
        {
            int max0 = gpu.FoldNormMaxRows;
            gpu.FoldNormMaxRows = maxRows;
            long l = 0;
            try
            {
                return With(gpu, fold, fold, () =>
                {
                    using var gx = Upload(gpu, x);
                    using var gxb = gpu.Allocate(dim);
                    using var gg = gpu.Allocate(ffn);
                    using var gu = gpu.Allocate(ffn);
                    long before = gpu.KernelLaunches;
                    gpu.RmsNorm(gx, gNorm, gxb, 1, dim, Eps);
                    gpu.MatMul(gxb, 1, [new(gGate, gg), new(gUp, gu)]);
                    gpu.SwiGlu(gg, gu, gg, ffn);
                    var r = new[] { ReadAll(gpu, gxb), ReadAll(gpu, gg), ReadAll(gpu, gu) };
                    l = gpu.KernelLaunches - before;
                    return r;
                });
            }
            finally
            {
                gpu.FoldNormMaxRows = max0;
                launches = l;
            }
        }
        var limited = Run(true, 2 * ffn - 1, out long limitedLaunches);
        var folded = Run(true, 2 * ffn, out long foldedLaunches);
        var unfolded = Run(false, int.MaxValue, out long unfoldedLaunches);
        // Unfolded: norm+quantize, gate/up, swiglu+quantize; limited: norm+quantize, gate/up+swiglu; folded: one launch.
        Assert.Equal((3L, 2L, 1L), (unfoldedLaunches, limitedLaunches, foldedLaunches));
        Assert.Equal(unfolded[0], limited[0]);
        Assert.Equal(unfolded[0], folded[0]);
        for (int i = 1; i < 3; i++)
        {
            AssertClose(limited[i], unfolded[i], KernelTolerances.Q8MatMul, $"output {i}, norm past the limit vs unfolded");
            AssertClose(folded[i], unfolded[i], KernelTolerances.Q8MatMul, $"output {i}, folded vs unfolded");
        }
    }

    /// <summary>A deferred op is run as the unfused kernels whenever something other than its consumer comes next.</summary>
    [Theory, InlineData("cpu"), InlineData("cpu32")]
    public void Deferred_norm_and_gate_up_are_flushed_for_any_other_reader(string device)
    {
        var gpu = Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(73);
        const int dim = 64, ffn = 64;
        var normView = t.Create("norm", GgmlType.F32, 1, dim);
        var gateView = t.Create("gate", GgmlType.Q8_0, ffn, dim, 0.5f);
        var upView = t.Create("up", GgmlType.Q8_0, ffn, dim, 0.5f);
        var f32View = t.Create("f32", GgmlType.F32, 8, dim, 0.5f);
        using var gNorm = gpu.LoadWeight(normView);
        using var gGate = gpu.LoadWeight(gateView);
        using var gUp = gpu.LoadWeight(upView);
        using var gF32 = gpu.LoadWeight(f32View);
        var cNorm = cpu.LoadWeight(normView);
        var x = t.Floats(dim, 3f);
        var cxb = cpu.Allocate(dim);
        cpu.RmsNorm(Upload(cpu, x), cNorm, cxb, 1, dim, Eps);
        var expectedXb = ReadAll(cpu, cxb);
        Assert.True(gpu.FusedNorm && gpu.FusedSwiGlu, gpu.FusionStatus);
        With(gpu, true, true, () =>
        {
            // Norm, then a read of its output: the norm runs at the read.
            using var gx = Upload(gpu, x);
            using var gxb = gpu.Allocate(dim);
            gpu.RmsNorm(gx, gNorm, gxb, 1, dim, Eps);
            AssertClose(ReadAll(gpu, gxb), expectedXb, KernelTolerances.RmsNorm, "read after norm");

            // Norm, then a product that cannot fold (f32 weight), then an op on the norm's input.
            using var gy = gpu.Allocate(8);
            gpu.RmsNorm(gx, gNorm, gxb, 1, dim, Eps);
            gpu.MatMul(gxb, 1, [new(gF32, gy)]);
            gpu.Add(gx, gx, dim); // x doubled after the norm has read it
            var cy = cpu.Allocate(8);
            cpu.MatMul(Upload(cpu, expectedXb), 1, [new(cpu.LoadWeight(f32View), cy)]);
            AssertClose(ReadAll(gpu, gy), ReadAll(cpu, cy), KernelTolerances.FloatMatMul + KernelTolerances.RmsNorm, "f32 product of a deferred norm");
            AssertClose(ReadAll(gpu, gxb), expectedXb, KernelTolerances.RmsNorm, "normed x, then x changed");
            AssertClose(ReadAll(gpu, gx), x.Select(v => 2 * v).ToArray(), 0, "x doubled");

            // In place (dst = x): not deferred.
            using var gx2 = Upload(gpu, x);
            gpu.RmsNorm(gx2, gNorm, gx2, 1, dim, Eps);
            gpu.Add(gxb, gx2, dim); // gxb = 2 × normed
            AssertClose(ReadAll(gpu, gxb), expectedXb.Select(v => 2 * v).ToArray(), KernelTolerances.RmsNorm, "in place");

            // Norm → gate/up, then reads of gate and up without a SwiGlu: the fused norm + product runs at the first read.
            using var gg = gpu.Allocate(ffn);
            using var gu = gpu.Allocate(ffn);
            gpu.RmsNorm(gx2, gNorm, gxb, 1, dim, Eps); // x2 holds the normed x: a second norm of it
            gpu.MatMul(gxb, 1, [new(gGate, gg), new(gUp, gu)]);
            var xb2 = ReadAll(gpu, gxb);
            var cg = cpu.Allocate(ffn);
            var cu = cpu.Allocate(ffn);
            cpu.MatMul(Upload(cpu, xb2), 1, [new(cpu.LoadWeight(gateView), cg), new(cpu.LoadWeight(upView), cu)]);
            AssertClose(ReadAll(gpu, gg), ReadAll(cpu, cg), KernelTolerances.Q8MatMul, "gate without swiglu");
            AssertClose(ReadAll(gpu, gu), ReadAll(cpu, cu), KernelTolerances.Q8MatMul, "up without swiglu");

            // A SwiGlu of other buffers does not take the deferred product's place.
            using var other = Upload(gpu, t.Floats(ffn));
            gpu.MatMul(gxb, 1, [new(gGate, gg), new(gUp, gu)]);
            gpu.SwiGlu(other, gu, other, ffn);
            AssertClose(ReadAll(gpu, gg), ReadAll(cpu, cg), KernelTolerances.Q8MatMul, "gate before an unrelated swiglu");
            return 0;
        });
    }

    /// <summary>
    /// A decode step whose kernels read token and position from the device (what a CUDA graph replays; the CPU emulation)
    /// gives the logits of eager steps with the folds off, over a shape where every fold applies.
    /// </summary>
    [Theory, InlineData("cpu")] // the lanes path (cpu32) is the same under replay: its kernels read no step value
    public void Replayed_decode_steps_with_folds_equal_eager_steps_without(string device)
    {
        var gpu = Devices.Get(device);
        using var t = new HostTensors(74);
        var shape = new TinyLlama.Shape(2, 64, 2, 1, 96, 50, 8);
        var weights = TinyLlama.RandomWeights(t, shape);
        using var replayed = new TinyLlama(gpu, shape, weights);
        using var eager = new TinyLlama(gpu, shape, weights);
        int token = 3, position = 0;
        using var step = gpu.CreateEmulatedDecodeStep(() => replayed.Enqueue([token], position));
        for (; position < 4; position++)
        {
            token = 3 + 7 * position;
            step.Run(token, position);
            var got = replayed.ReadLogits();
            var want = With(gpu, false, false, () => eager.Forward([token], position).ToArray());
            AssertClose(got, want, KernelTolerances.Forward, $"logits at position {position}");
        }
    }

    /// <summary>The start-up check CUDA runs before trusting the folds passes on the CPU accelerator (same ops, same comparison).</summary>
    // cpu32 and the CUDA-shaped device (CUDA's lanes path and launch shapes) are covered op by op above: the check's
    // 256-wide rows take about 40 s on the CUDA-shaped device here.
    [Theory, InlineData("cpu")]
    public void The_device_start_up_check_of_the_folds_passes(string device)
    {
        var gpu = Devices.Get(device);
        Assert.Null(gpu.CheckFusion());
        Assert.True(gpu.FusedNorm && gpu.FusedSwiGlu, gpu.FusionStatus);
    }
}
