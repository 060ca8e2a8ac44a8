using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Kernels;
using Engine.Kernels.Testing;
using ILGPU;
using ILGPU.Runtime;
using static Engine.GpuBench.Timing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.GpuBench;

/// <summary>
/// Where the host time of a decode step goes: each backend op of a TinyLlama-1.1B decode step (n = 1, the check
/// shape's widths) called <see cref="Sizes.EnqueueCalls"/> times back to back without waiting, host time of the
/// loop per call and per kernel launch, beside empty kernels launched the way the backend launches (its stream,
/// an auto-grouped one-view launcher and an explicitly grouped launcher with the attention kernel's 11 views and
/// parameter struct). The difference between an op's µs per launch and the empty kernel's is the backend's own
/// host work (checks, views, parameter structs) plus ILGPU's argument marshalling of the wider signature.
/// </summary>
internal static class HostEnqueue
{
    private static void EmptyKernel(Index1D i, ArrayView<float> a) { }

    private static void EmptyWideKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d, ArrayView<float> e,
        ArrayView<int> f, ArrayView<int> g, ArrayView<float> h, ArrayView<float> i, ArrayView<float> j, ArrayView<float> k, AttentionParams p) { }

    public static void Run(IlgpuBackend g, Sizes s, Report r)
    {
        var shape = s.CheckShape;
        int d = shape.Dim, ff = shape.FeedForward, heads = shape.Heads, kvHeads = shape.KvHeads, hd = shape.HeadDim, kv = shape.KvDim;
        int calls = s.EnqueueCalls;
        int position = s.AttentionPositions - 1; // as the op timings: attention over AttentionPositions cached positions
        using var t = new HostTensors(78);
        var acc = g.Device.Accelerator;
        var stream = g.Stream;

        using var table = g.LoadWeight(t.CreateRandomQ8_0("tok", shape.Vocab, d));
        using var norm = g.LoadWeight(t.Create("norm", GgmlType.F32, 1, d));
        using var wq = g.LoadWeight(t.CreateRandomQ8_0("q", d, d));
        using var wk = g.LoadWeight(t.CreateRandomQ8_0("k", kv, d));
        using var wv = g.LoadWeight(t.CreateRandomQ8_0("v", kv, d));
        using var wo = g.LoadWeight(t.CreateRandomQ8_0("o", d, d));
        using var wg = g.LoadWeight(t.CreateRandomQ8_0("gate", ff, d));
        using var wu = g.LoadWeight(t.CreateRandomQ8_0("up", ff, d));
        using var wd = g.LoadWeight(t.CreateRandomQ8_0("down", d, ff));
        using var wh = g.LoadWeight(t.CreateRandomQ8_0("output", shape.Vocab, d));
        using var x = Upload(g, t.Floats(d));
        using var xb = g.Allocate(d);
        using var q = Upload(g, t.Floats(d));
        using var k = Upload(g, t.Floats(kv));
        using var v = Upload(g, t.Floats(kv));
        using var att = g.Allocate(d);
        using var proj = g.Allocate(d);
        using var gate = Upload(g, t.Floats(ff));
        using var up = Upload(g, t.Floats(ff));
        using var logits = g.Allocate(shape.Vocab);
        using var cache = g.AllocateKvCache(1, shape.Context, kv);
        MatMulTarget[] qkv = [new(wq, q), new(wk, k), new(wv, v)];
        MatMulTarget[] gateUp = [new(wg, gate), new(wu, up)];
        MatMulTarget[] head = [new(wh, logits)];
        int[] token = [17];
        int[] pos = [position];

        using var buf = acc.Allocate1D<float>(1024);
        using var ibuf = acc.Allocate1D<int>(1024);
        ArrayView<float> bv = buf.View;
        ArrayView<int> iv = ibuf.View;
        var small = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>>(EmptyKernel);
        var wide = acc.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(EmptyWideKernel);
        var config = new KernelConfig(new Index2D(32, 1), new Index2D(g.Device.GroupSize, 1));

        r.Line($"   {calls} calls per op back to back (TinyLlama-1.1B widths, decode n = 1); host = the loop before waiting; device = until the GPU is done");
        r.Line($"   {"op",-58} {"launches",8} {"host µs/call",13} {"host µs/launch",15} {"device µs/call",15}");
        void Measure(string name, Action op, bool counted = true)
        {
            for (int i = 0; i < 10; i++) op();
            g.Synchronize();
            long launches0 = g.KernelLaunches;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < calls; i++) op();
            double host = Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
            g.Synchronize();
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
            double launches = counted ? (double)(g.KernelLaunches - launches0) / calls : 1;
            r.Line($"   {name,-58} {launches,8:F1} {host * 1e6,13:F1} {host * 1e6 / Math.Max(launches, 1e-9),15:F1} {total * 1e6,15:F1}");
            r.Row("host enqueue", name, $"{host * 1e6:F1} µs/call, {launches:F0} launch(es)", "");
        }
        Measure("empty kernel, auto-grouped, 1 view, our stream", () => small(stream, 1024, bv), counted: false);
        Measure("empty kernel, explicit config, 11 views + struct, our stream", () => wide(stream, config, bv, bv, bv, bv, bv, iv, iv, bv, bv, bv, bv, default), counted: false);
        Measure("Embed (Q8_0 row gather)", () => g.Embed(table, token, x));
        Measure("RmsNorm (+ quantize for the next product)", () => g.RmsNorm(x, norm, xb, 1, d, 1e-5f));
        Measure("MatMul q/k/v fused, input quantized each call", () => g.MatMul(xb, 1, qkv)); // in decode its producer (RmsNorm) quantizes: 1 launch
        Measure("RopeStoreKvAttention (fused, + quantize)", () => g.RopeStoreKvAttention(cache, 0, q, k, v, att, 1, pos, heads, kvHeads, hd, 10000f, RopeStyle.Normal));
        Measure("MatMulAdd o-projection into the residual", () => g.MatMulAdd(att, 1, new MatMulTarget(wo, proj), x));
        Measure("MatMul gate/up fused, input quantized each call", () => g.MatMul(x, 1, gateUp));
        Measure("SwiGlu (+ quantize)", () => g.SwiGlu(gate, up, gate, ff));
        Measure("MatMulAdd down projection into the residual", () => g.MatMulAdd(gate, 1, new MatMulTarget(wd, proj), x));
        Measure($"MatMul output head {shape.Vocab}x{d}, input quantized each call", () => g.MatMul(x, 1, head));
    }
}
