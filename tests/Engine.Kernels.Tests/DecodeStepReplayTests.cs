using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using Engine.Runtime.Llama;
using Engine.Tests.Shared;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// Decode-step replay (IlgpuBackend.Graphs.cs). A recorded step's kernels read the token and position from a device
/// buffer instead of kernel scalars; on the CPU accelerator the emulated step runs exactly that form op by op, so the
/// kernels' device-value path is checked here against the scalar reference. The CUDA graph itself is checked where a
/// GPU is present (and by the GPU benchmark's graphs-vs-eager id check).
/// </summary>
[Collection("ilgpu")]
public class DecodeStepReplayTests
{
    private const int Heads = 4, KvHeads = 2, HeadDim = 32, Context = 24, Dim = Heads * HeadDim, KvDim = KvHeads * HeadDim;

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = HostTensors.NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    [Theory, InlineData("cpu"), InlineData("cpu32")]
    public void Ops_reading_token_and_position_from_the_device_match_the_reference(string device)
    {
        var gpu = Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(61);
        var table = t.Create("tok", Core.Gguf.GgmlType.Q8_0, 50, Dim);
        using var gTable = gpu.LoadWeight(table);
        var cTable = cpu.LoadWeight(table);
        foreach (var style in new[] { RopeStyle.Normal, RopeStyle.NeoX })
        {
            using var gCache = gpu.AllocateKvCache(2, Context, KvDim);
            var cCache = cpu.AllocateKvCache(2, Context, KvDim);
            // A prefill of 9 rows (the several-row path) fills positions 0..8 of both layers.
            {
                int[] positions = Enumerable.Range(0, 9).ToArray();
                var k = t.Floats(9 * KvDim);
                var v = t.Floats(9 * KvDim);
                foreach (int layer in new[] { 0, 1 })
                {
                    using var gk = Upload(gpu, k);
                    using var gv = Upload(gpu, v);
                    gpu.StoreKv(gCache, layer, gk, gv, 9, positions);
                    cpu.StoreKv(cCache, layer, Upload(cpu, k), Upload(cpu, v), 9, positions);
                }
            }
            using var ge = gpu.Allocate(Dim);
            using var go = gpu.Allocate(Dim);
            using var gr = gpu.Allocate(Dim);
            using var gu = gpu.Allocate(Dim);
            using var guo = gpu.Allocate(Dim);
            using var gq = gpu.Allocate(Dim);
            using var gk1 = gpu.Allocate(KvDim);
            using var gv1 = gpu.Allocate(KvDim);
            int token = 0, position = 0;
            // The body a decoder would record: the scalars it passes are the ones Run gets, as a replay requires.
            using var step = gpu.CreateEmulatedDecodeStep(() =>
            {
                gpu.Embed(gTable, [token], ge);
                gpu.RopeStoreKvAttention(gCache, 0, gq, gk1, gv1, go, 1, [position], Heads, KvHeads, HeadDim, 10000f, style); // fused form
                gpu.Rope(gr, 1, Heads, HeadDim, [position], 10000f, style);
                gpu.StoreKv(gCache, 1, gk1, gv1, 1, [position]);                                                            // unfused forms
                gpu.Attention(gCache, 1, gu, guo, 1, [position], Heads, KvHeads, HeadDim);
            });
            foreach (var (tok, pos) in new[] { (7, 9), (49, 10), (0, 11) })
            {
                var q = t.Floats(Dim);
                var k = t.Floats(KvDim);
                var v = t.Floats(KvDim);
                var r = t.Floats(Dim);
                var u = t.Floats(Dim);
                gpu.Write(gq, q);
                gpu.Write(gk1, k);
                gpu.Write(gv1, v);
                gpu.Write(gr, r);
                gpu.Write(gu, u);
                (token, position) = (tok, pos);
                step.Run(tok, pos);

                var ce = cpu.Allocate(Dim);
                cpu.Embed(cTable, [tok], ce);
                var (cq, ck, cv, co) = (Upload(cpu, q), Upload(cpu, k), Upload(cpu, v), cpu.Allocate(Dim));
                cpu.Rope(cq, 1, Heads, HeadDim, [pos], 10000f, style);
                cpu.Rope(ck, 1, KvHeads, HeadDim, [pos], 10000f, style);
                cpu.StoreKv(cCache, 0, ck, cv, 1, [pos]);
                cpu.Attention(cCache, 0, cq, co, 1, [pos], Heads, KvHeads, HeadDim);
                var cr = Upload(cpu, r);
                cpu.Rope(cr, 1, Heads, HeadDim, [pos], 10000f, style);
                cpu.StoreKv(cCache, 1, Upload(cpu, k), Upload(cpu, v), 1, [pos]);
                var cu = Upload(cpu, u);
                var cuo = cpu.Allocate(Dim);
                cpu.Attention(cCache, 1, cu, cuo, 1, [pos], Heads, KvHeads, HeadDim);

                string at = $"{style} token {tok} at {pos}";
                Assert.Equal(ReadAll(cpu, ce), ReadAll(gpu, ge));
                AssertClose(ReadAll(gpu, go), ReadAll(cpu, co), KernelTolerances.Rope + KernelTolerances.Attention, "fused attention " + at);
                AssertClose(ReadAll(gpu, gr), ReadAll(cpu, cr), KernelTolerances.Rope, "rope " + at);
                AssertClose(ReadAll(gpu, guo), ReadAll(cpu, cuo), KernelTolerances.Attention, "store + attention " + at);
            }
        }
    }

    [Fact]
    public void A_replayed_step_refuses_a_position_outside_the_cache()
    {
        var gpu = Devices.Get("cpu");
        using var cache = gpu.AllocateKvCache(1, Context, KvDim);
        using var q = gpu.Allocate(Dim);
        using var k = gpu.Allocate(KvDim);
        using var o = gpu.Allocate(Dim);
        // The body passes position 0 on the host; a replay gets its position only through Run, so Run must check it.
        using var step = gpu.CreateEmulatedDecodeStep(() =>
            gpu.RopeStoreKvAttention(cache, 0, q, k, k, o, 1, [0], Heads, KvHeads, HeadDim, 10000f, RopeStyle.Normal));
        step.Run(0, 0);
        step.Run(0, Context - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => step.Run(0, Context));
        Assert.Throws<ArgumentOutOfRangeException>(() => step.Run(0, -1));
    }

    [Fact]
    public void The_cpu_accelerator_offers_no_graphs()
    {
        var gpu = Devices.Get("cpu");
        Assert.False(gpu.GraphsEnabled);
        gpu.GraphsEnabled = true;
        Assert.False(gpu.GraphsEnabled);
        Assert.Null(gpu.CreateDecodeStep(() => { }));
    }

    [Fact]
    public void The_driver_entry_points_load_or_say_why_not()
    {
        // Without a CUDA driver (this machine) the graph path must report a reason, not throw; with one, load every symbol.
        var driver = CudaDriver.TryLoad(out string reason);
        Assert.True(driver is not null ? reason.Length == 0 : reason.Length > 0, $"driver {(driver is null ? "absent" : "loaded")}, reason '{reason}'");
    }

    /// <summary>The decoder's replay path on stories260K: greedy ids equal the scalar reference's (CPU: the emulated step).</summary>
    [RequiresSharedFact]
    public void Stories260K_greedy_ids_with_replayed_decode_steps_equal_the_reference()
    {
        string path = SharedFixtures.PathOf("models", "stories260K.q8_0.gguf");
        var expected = EndToEndTests.Greedy(path, new ReferenceBackend(), 24);
        var gpu = Devices.Get("cpu");
        gpu.EmulateDecodeSteps = true;
        try
        {
            Assert.Equal(expected, EndToEndTests.Greedy(path, gpu, 24));
        }
        finally
        {
            gpu.EmulateDecodeSteps = false;
        }
    }

    /// <summary>CUDA: recorded and replayed graphs give the same greedy ids as eager launches, and do replay.</summary>
    [CudaFact]
    public void Cuda_graph_replay_gives_the_eager_greedy_ids()
    {
        if (SharedFixtures.Root is null) return; // stories260K absent
        string path = SharedFixtures.PathOf("models", "stories260K.q8_0.gguf");
        var gpu = Devices.Get("cuda");
        bool was = gpu.GraphsEnabled;
        try
        {
            gpu.GraphsEnabled = false;
            var eager = EndToEndTests.Greedy(path, gpu, 48);
            gpu.GraphsEnabled = true;
            long graphs = gpu.GraphLaunches;
            var replayed = EndToEndTests.Greedy(path, gpu, 48);
            Assert.Equal(eager, replayed);
            Assert.True(gpu.GraphLaunches - graphs >= 40, $"{gpu.GraphLaunches - graphs} graph launches ({gpu.GraphStatus})");
        }
        finally
        {
            gpu.GraphsEnabled = was;
        }
    }
}
