using Engine.Kernels;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels.Tests;

/// <summary>
/// Every op of the ILGPU backend against <see cref="ReferenceBackend"/> on fresh random inputs, with a
/// named normalized-error bound per op (‖ilgpu − reference‖ / ‖reference‖). Shapes are tiny: the ILGPU
/// CPU accelerator is about 200× slower than AVX2 code. Runs on every available accelerator.
/// </summary>
[Collection("ilgpu")] // one accelerator, one test at a time
public class BackendOpTests
{
    public static TheoryData<string> Devices => Tests.Devices.Names;

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = HostTensors.NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void Quantize_kernel_gives_the_reference_Q8_0_bytes(string device)
    {
        var acc = Tests.Devices.Get(device).Device.Accelerator;
        using var t = new HostTensors(11);
        const int n = 3, cols = 96;
        var x = t.Floats(n * cols, 3f);
        x[5] = 0.5f * x[6]; // some exact halves after scaling are likely; also a zero block below
        for (int i = 64; i < 96; i++) x[i] = 0;
        var kernel = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(QuantizeQ8_0Kernel.Kernel);
        using var xb = acc.Allocate1D(x);
        using var xq = acc.Allocate1D<int>(n * cols / 4);
        using var xd = acc.Allocate1D<float>(n * cols / 32);
        if (acc.WarpSize % 32 == 0)
        {
            // The thread-per-element kernel CUDA uses, with one extra group wholly past the end.
            var lanes = acc.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(QuantizeQ8_0Kernel.KernelLanes);
            int group = acc.WarpSize;
            lanes(new KernelConfig(n * cols / group + 1, group), xb.View, xq.View, xd.View, n * cols);
        }
        else
        {
            kernel(n * cols / 32, xb.View, xq.View, xd.View, cols);
        }
        acc.Synchronize();
        var q = xq.GetAsArray1D();
        var d = xd.GetAsArray1D();
        var expected = new BlockQ8_0[n * cols / 32];
        Q8_0.QuantizeRow(x, expected);
        for (int b = 0; b < expected.Length; b++)
        {
            Assert.Equal((float)expected[b].D, d[b]);
            for (int j = 0; j < 32; j++)
                Assert.Equal(expected[b].Qs[j], (sbyte)(q[b * 8 + j / 4] >> (8 * (j % 4))));
        }
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void MatMul_Q8_0_fused_targets_match_reference(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(21);
        const int cols = 96; // 3 blocks: block starts alternate between 2- and 4-byte alignment
        int[] rows = [5, 7, 3, 4];
        var views = rows.Select((r, i) => t.Create("w" + i, GgmlType.Q8_0, r, cols, 0.5f)).ToArray();
        foreach (int n in new[] { 1, 3 })
        {
            var x = t.Floats(n * cols, 2f);
            var gx = Upload(gpu, x);
            var cx = Upload(cpu, x);
            var gTargets = views.Select(v => new MatMulTarget(gpu.LoadWeight(v), gpu.Allocate(n * v.Rows))).ToArray();
            var cTargets = views.Select(v => new MatMulTarget(cpu.LoadWeight(v), cpu.Allocate(n * v.Rows))).ToArray();
            gpu.MatMul(gx, n, gTargets); // four targets: one fused launch of three, then one
            cpu.MatMul(cx, n, cTargets);
            for (int i = 0; i < views.Length; i++)
                AssertClose(ReadAll(gpu, gTargets[i].Output), ReadAll(cpu, cTargets[i].Output), KernelTolerances.Q8MatMul, $"Q8_0 target {i}, n={n}");
            foreach (var g in gTargets) { g.Weight.Dispose(); g.Output.Dispose(); }
            gx.Dispose();
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void MatMul_float_weights_match_reference(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(22);
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            const int n = 2, rows = 9, cols = 40;
            var w = t.Create("w", type, rows, cols);
            var x = t.Floats(n * cols);
            using var gw = gpu.LoadWeight(w);
            using var gy = gpu.Allocate(n * rows);
            var cy = cpu.Allocate(n * rows);
            gpu.MatMul(Upload(gpu, x), n, [new MatMulTarget(gw, gy)]);
            cpu.MatMul(Upload(cpu, x), n, [new MatMulTarget(cpu.LoadWeight(w), cy)]);
            AssertClose(ReadAll(gpu, gy), ReadAll(cpu, cy), KernelTolerances.FloatMatMul, type.ToString());
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void RmsNorm_matches_reference_in_place_and_out_of_place(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(23);
        const int n = 2, dim = 48;
        var w = t.Create("norm", GgmlType.F32, 1, dim);
        var x = t.Floats(n * dim, 4f);
        var gx = Upload(gpu, x);
        var gy = gpu.Allocate(n * dim);
        var cx = Upload(cpu, x);
        var cy = cpu.Allocate(n * dim);
        var gw = gpu.LoadWeight(w);
        gpu.RmsNorm(gx, gw, gy, n, dim, 1e-5f);
        cpu.RmsNorm(cx, cpu.LoadWeight(w), cy, n, dim, 1e-5f);
        AssertClose(ReadAll(gpu, gy), ReadAll(cpu, cy), KernelTolerances.RmsNorm, "out of place");
        gpu.RmsNorm(gx, gw, gx, n, dim, 1e-5f);
        AssertClose(ReadAll(gpu, gx), ReadAll(cpu, cy), KernelTolerances.RmsNorm, "in place");
    }

    [Theory, MemberData(nameof(Devices))]
    public void Rope_matches_reference_for_both_styles_and_large_positions(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(24);
        const int heads = 3, headDim = 8;
        foreach (var style in new[] { RopeStyle.Normal, RopeStyle.NeoX })
        {
            foreach (int[] positions in new[] { new[] { 37 }, new[] { 0, 5, 1000, 4095 } })
            {
                int n = positions.Length;
                var x = t.Floats(n * heads * headDim);
                var gx = Upload(gpu, x);
                var cx = Upload(cpu, x);
                gpu.Rope(gx, n, heads, headDim, positions, 10000f, style);
                cpu.Rope(cx, n, heads, headDim, positions, 10000f, style);
                AssertClose(ReadAll(gpu, gx), ReadAll(cpu, cx), KernelTolerances.Rope, $"{style} at {string.Join(",", positions)}");
            }
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Attention_over_stored_kv_matches_reference_for_prefill_and_decode(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(25);
        const int layers = 2, ctx = 16, heads = 4, kvHeads = 2, headDim = 8, kvDim = kvHeads * headDim, layer = 1;
        using var gc = gpu.AllocateKvCache(layers, ctx, kvDim);
        var cc = cpu.AllocateKvCache(layers, ctx, kvDim);

        // Prefill 6 rows (causal), then one decode row at position 6.
        foreach (int[] positions in new[] { new[] { 0, 1, 2, 3, 4, 5 }, new[] { 6 } })
        {
            int n = positions.Length;
            var k = t.Floats(n * kvDim);
            var v = t.Floats(n * kvDim);
            var q = t.Floats(n * heads * headDim, 2f);
            gpu.StoreKv(gc, layer, Upload(gpu, k), Upload(gpu, v), n, positions);
            cpu.StoreKv(cc, layer, Upload(cpu, k), Upload(cpu, v), n, positions);
            var go = gpu.Allocate(n * heads * headDim);
            var co = cpu.Allocate(n * heads * headDim);
            gpu.Attention(gc, layer, Upload(gpu, q), go, n, positions, heads, kvHeads, headDim);
            cpu.Attention(cc, layer, Upload(cpu, q), co, n, positions, heads, kvHeads, headDim);
            AssertClose(ReadAll(gpu, go), ReadAll(cpu, co), KernelTolerances.Attention, $"n={n}");
        }
    }

    /// <summary>
    /// RMSNorm and SwiGLU quantize their own output for the product that follows; that product must equal
    /// (bit for bit) the product of the same values quantized by the standalone kernel.
    /// </summary>
    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void Fused_producer_quantization_equals_the_standalone_quantize(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(31);
        const int dim = 128, n = 2;
        var w = gpu.LoadWeight(t.Create("w", GgmlType.Q8_0, 9, dim, 0.5f));
        var norm = gpu.LoadWeight(t.Create("norm", GgmlType.F32, 1, dim));
        var x = Upload(gpu, t.Floats(n * dim, 3f));
        var up = Upload(gpu, t.Floats(n * dim, 2f));
        var y = gpu.Allocate(n * dim);
        var fused = gpu.Allocate(n * 9);
        var plain = gpu.Allocate(n * 9);

        // The RMSNorm producer's own launch (folded into the product, its quantization is the same but the product's
        // kernel sums in another order: FoldedNormSwiGluTests).
        bool folded = gpu.FusedNorm;
        gpu.FusedNorm = false;
        try
        {
            gpu.RmsNorm(x, norm, y, n, dim, 1e-5f);
            gpu.MatMul(y, n, [new MatMulTarget(w, fused)]);
        }
        finally
        {
            gpu.FusedNorm = folded;
        }
        var copy = Upload(gpu, ReadAll(gpu, y));
        gpu.MatMul(copy, n, [new MatMulTarget(w, plain)]);
        Assert.Equal(ReadAll(gpu, plain), ReadAll(gpu, fused));

        gpu.SwiGlu(x, up, y, n * dim);
        gpu.MatMul(y, n, [new MatMulTarget(w, fused)]);
        copy = Upload(gpu, ReadAll(gpu, y));
        gpu.MatMul(copy, n, [new MatMulTarget(w, plain)]);
        Assert.Equal(ReadAll(gpu, plain), ReadAll(gpu, fused));
    }

    [Theory, MemberData(nameof(Devices))]
    public void Elementwise_ops_match_reference(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(26);
        const int count = 70;
        var g = t.Floats(count, 6f);
        var u = t.Floats(count, 2f);

        var gg = Upload(gpu, g);
        var cg = Upload(cpu, g);
        gpu.SwiGlu(gg, Upload(gpu, u), gg, count); // dst == gate
        cpu.SwiGlu(cg, Upload(cpu, u), cg, count);
        AssertClose(ReadAll(gpu, gg), ReadAll(cpu, cg), KernelTolerances.SwiGlu, "swiglu");

        var ga = Upload(gpu, g);
        var ca = Upload(cpu, g);
        gpu.Add(ga, Upload(gpu, u), count);
        cpu.Add(ca, Upload(cpu, u), count);
        Assert.Equal(ReadAll(cpu, ca), ReadAll(gpu, ga));

        var bias = t.Create("bias", GgmlType.F32, 1, 35);
        gpu.AddBias(ga, gpu.LoadWeight(bias), 2);
        cpu.AddBias(ca, cpu.LoadWeight(bias), 2);
        Assert.Equal(ReadAll(cpu, ca), ReadAll(gpu, ga));
    }

    [Theory, MemberData(nameof(Devices))]
    public void Embed_gathers_the_reference_rows_for_every_type(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(27);
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            var table = t.Create("tok", type, 11, 64);
            foreach (int[] tokens in new[] { new[] { 7 }, new[] { 0, 10, 3, 3 } })
            {
                var gy = gpu.Allocate(tokens.Length * 64);
                var cy = cpu.Allocate(tokens.Length * 64);
                gpu.Embed(gpu.LoadWeight(table), tokens, gy);
                cpu.Embed(cpu.LoadWeight(table), tokens, cy);
                Assert.Equal(ReadAll(cpu, cy), ReadAll(gpu, gy));
            }
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Bad_tokens_and_positions_are_rejected_with_a_message(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(28);
        var table = gpu.LoadWeight(t.Create("tok", GgmlType.F32, 4, 32));
        var y = gpu.Allocate(32);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Embed(table, [4], y));
        Assert.Contains("outside vocabulary", e.Message);
        using var cache = gpu.AllocateKvCache(1, 8, 32);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.StoreKv(cache, 0, y, y, 1, [8]));
        Assert.Contains("outside the context", e.Message);
        Assert.Throws<ArgumentException>(() => gpu.Read(y, new float[33]));
    }

    [Theory, MemberData(nameof(Devices))]
    public void Slices_write_and_read_their_own_elements(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var buf = gpu.Allocate(10);
        var slice = buf.Slice(4, 3);
        gpu.Write(slice, [1f, 2f, 3f]);
        var all = ReadAll(gpu, buf);
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 2, 3, 0, 0, 0 }, all);
    }

    /// <summary>
    /// The decoder's op sequence on two shapes: head dim 16 (attention output quantized by the separate
    /// kernel) and head dim 32 (attention, RMSNorm and SwiGLU all hand their output to the next product
    /// already quantized).
    /// </summary>
    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void A_small_llama_forward_matches_reference_over_prefill_and_decode(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(29);
        foreach (var shape in new[]
        {
            new TinyLlama.Shape(Layers: 2, Dim: 64, Heads: 4, KvHeads: 2, FeedForward: 96, Vocab: 50, Context: 16),
            new TinyLlama.Shape(Layers: 2, Dim: 64, Heads: 2, KvHeads: 1, FeedForward: 128, Vocab: 40, Context: 16),
        })
        {
            var weights = TinyLlama.RandomWeights(t, shape);
            using var g = new TinyLlama(gpu, shape, weights);
            using var c = new TinyLlama(cpu, shape, weights);
            int[] prompt = [1, 17, 33];
            AssertClose(g.Forward(prompt, 0), c.Forward(prompt, 0), KernelTolerances.Forward, $"head dim {shape.HeadDim}: prefill logits");
            for (int step = 0; step < 4; step++)
            {
                int token = 5 + step * 9;
                int pos = prompt.Length + step;
                AssertClose(g.Forward([token], pos), c.Forward([token], pos), KernelTolerances.Forward, $"head dim {shape.HeadDim}: decode step {step}");
            }
        }
    }

    [CudaFact]
    public void Cuda_backend_names_the_gpu()
    {
        var gpu = Tests.Devices.Get("cuda");
        Assert.StartsWith("ilgpu-cuda: ", gpu.Name);
        Assert.Contains("driver", gpu.Device.Description);
    }
}
