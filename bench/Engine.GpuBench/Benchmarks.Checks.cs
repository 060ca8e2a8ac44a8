using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Kernels;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.GpuBench;
/// <summary>The op checks: every backend op against the scalar reference before anything is timed.</summary>
internal static partial class Benchmarks
{
    /// <summary>Each op on fresh random inputs against <see cref="ReferenceBackend"/>, at the TinyLlama-1.1B width.</summary>
    public static void OpChecks(IlgpuBackend g, Sizes s, Report r)
    {
        const string S = "check";
        var c = new ReferenceBackend();
        var shape = s.CheckShape;
        int d = shape.Dim, heads = shape.Heads, kvHeads = shape.KvHeads, hd = shape.HeadDim, kvDim = shape.KvDim, ff = shape.FeedForward;
        using var t = new HostTensors(1234);

        var norm = t.Create("norm", GgmlType.F32, 1, d);
        var x = t.Floats(2 * d, 3f);
        var gy = g.Allocate(2 * d);
        var cy = c.Allocate(2 * d);
        g.RmsNorm(Upload(g, x), g.LoadWeight(norm), gy, 2, d, 1e-5f);
        c.RmsNorm(Upload(c, x), c.LoadWeight(norm), cy, 2, d, 1e-5f);
        Check(r, S, $"rmsnorm 2x{d}", HostTensors.NormalizedError(ReadAll(g, gy), ReadAll(c, cy)), KernelTolerances.RmsNorm);

        foreach (var (style, positions) in new[] { (RopeStyle.Normal, new[] { s.AttentionPositions }), (RopeStyle.NeoX, new[] { 0, 7, 511, 4000 }) })
        {
            int n = positions.Length;
            var q = t.Floats(n * heads * hd);
            var gq = Upload(g, q);
            var cq = Upload(c, q);
            g.Rope(gq, n, heads, hd, positions, 10000f, style);
            c.Rope(cq, n, heads, hd, positions, 10000f, style);
            Check(r, S, $"rope {style} n={n} {heads}x{hd}", HostTensors.NormalizedError(ReadAll(g, gq), ReadAll(c, cq)), KernelTolerances.Rope);
        }

        {
            int p = s.AttentionPositions;
            using var gc = g.AllocateKvCache(2, shape.Context, kvDim);
            var cc = c.AllocateKvCache(2, shape.Context, kvDim);
            foreach (var positions in new[] { Enumerable.Range(0, p).ToArray(), new[] { p } })
            {
                int n = positions.Length;
                var k = t.Floats(n * kvDim);
                var v = t.Floats(n * kvDim);
                var q = t.Floats(n * heads * hd, 0.5f);
                g.StoreKv(gc, 1, Upload(g, k), Upload(g, v), n, positions);
                c.StoreKv(cc, 1, Upload(c, k), Upload(c, v), n, positions);
                var go = g.Allocate(n * heads * hd);
                var co = c.Allocate(n * heads * hd);
                g.Attention(gc, 1, Upload(g, q), go, n, positions, heads, kvHeads, hd);
                c.Attention(cc, 1, Upload(c, q), co, n, positions, heads, kvHeads, hd);
                Check(r, S, $"kv store + attention n={n} {heads}/{kvHeads} heads", HostTensors.NormalizedError(ReadAll(g, go), ReadAll(c, co)), KernelTolerances.Attention);
            }
        }

        bool flashWas = g.FlashDecode;
        try
        {
            foreach (bool flash in new[] { true, false })
            {
                // Split decode attention, flash (one launch) and chunks + merge (two): at position 0 (one live chunk), and
                // fused RoPE + store + attention at a position several chunks deep, against the unfused reference ops.
                g.FlashDecode = flash;
                if (flash && !g.DecodeAttentionForm(hd).StartsWith("flash", StringComparison.Ordinal)) continue;
                using var gc = g.AllocateKvCache(1, shape.Context, kvDim);
                var cc = c.AllocateKvCache(1, shape.Context, kvDim);
                int deep = Math.Min(shape.Context - 1, 3 * AttentionKernel.ChunkLengthFor(shape.Context) + 17);
                var fill = Enumerable.Range(1, deep - 1).ToArray();
                var kf = t.Floats(fill.Length * kvDim);
                var vf = t.Floats(fill.Length * kvDim);
                g.StoreKv(gc, 0, Upload(g, kf), Upload(g, vf), fill.Length, fill);
                c.StoreKv(cc, 0, Upload(c, kf), Upload(c, vf), fill.Length, fill);
                foreach (int at in new[] { 0, deep })
                {
                    var k = t.Floats(kvDim);
                    var v = t.Floats(kvDim);
                    var q = t.Floats(heads * hd, 0.5f);
                    var go = g.Allocate(heads * hd);
                    var co = c.Allocate(heads * hd);
                    g.RopeStoreKvAttention(gc, 0, Upload(g, q), Upload(g, k), Upload(g, v), go, 1, [at], heads, kvHeads, hd, 10000f, RopeStyle.Normal);
                    var (cq, ck) = (Upload(c, q), Upload(c, k));
                    c.Rope(cq, 1, heads, hd, [at], 10000f, RopeStyle.Normal);
                    c.Rope(ck, 1, kvHeads, hd, [at], 10000f, RopeStyle.Normal);
                    c.StoreKv(cc, 0, ck, Upload(c, v), 1, [at]);
                    c.Attention(cc, 0, cq, co, 1, [at], heads, kvHeads, hd);
                    Check(r, S, $"rope+store+attention decode at position {at} ({g.DecodeAttentionForm(hd)})",
                        HostTensors.NormalizedError(ReadAll(g, go), ReadAll(c, co)), KernelTolerances.Rope + KernelTolerances.Attention);
                }
            }
        }
        finally
        {
            g.FlashDecode = flashWas;
        }

        {
            // Batched attention of one step over three streams (continuous batching): decode rows at a deep position and at
            // 0, and a prefill of 5 rows, in the pooled caches; against the reference run segment by segment.
            int deep = Math.Min(shape.Context - 1, 2 * AttentionKernel.ChunkLengthFor(shape.Context) + 9);
            var gcs = new[] { g.AllocateKvCache(2, shape.Context, kvDim), g.AllocateKvCache(2, shape.Context, kvDim), g.AllocateKvCache(2, shape.Context, kvDim) };
            var ccs = new[] { c.AllocateKvCache(2, shape.Context, kvDim), c.AllocateKvCache(2, shape.Context, kvDim), c.AllocateKvCache(2, shape.Context, kvDim) };
            try
            {
                var fill = Enumerable.Range(0, deep).ToArray();
                var kf = t.Floats(deep * kvDim);
                g.StoreKv(gcs[0], 1, Upload(g, kf), Upload(g, kf), deep, fill);
                c.StoreKv(ccs[0], 1, Upload(c, kf), Upload(c, kf), deep, fill);
                int[] offsets = [0, 1, 2], counts = [1, 1, 5], positions = [deep, 0, 10, 11, 12, 13, 14];
                int n = positions.Length;
                var q = t.Floats(n * heads * hd, 0.5f);
                var k = t.Floats(n * kvDim);
                var v = t.Floats(n * kvDim);
                var go = g.Allocate(n * heads * hd);
                g.RopeStoreKvAttentionBatch(gcs, offsets, counts, 1, Upload(g, q), Upload(g, k), Upload(g, v), go, positions, heads, kvHeads, hd, 10000f, RopeStyle.Normal);
                var expected = new float[n * heads * hd];
                for (int sgm = 0; sgm < 3; sgm++)
                {
                    int at = offsets[sgm], cnt = counts[sgm], w = heads * hd;
                    var co = c.Allocate(cnt * w);
                    ((IComputeBackend)c).RopeStoreKvAttention(ccs[sgm], 1, Upload(c, q[(at * w)..((at + cnt) * w)]), Upload(c, k[(at * kvDim)..((at + cnt) * kvDim)]),
                        Upload(c, v[(at * kvDim)..((at + cnt) * kvDim)]), co, cnt, positions.AsSpan(at, cnt), heads, kvHeads, hd, 10000f, RopeStyle.Normal);
                    ReadAll(c, co).CopyTo(expected, at * w);
                }
                Check(r, S, $"batched rope+store+attention, 3 streams (decode at {deep} and 0, prefill of 5) ({(g.BatchedAttention ? "batched" : "per segment")})",
                    HostTensors.NormalizedError(ReadAll(g, go), expected), KernelTolerances.Rope + KernelTolerances.Attention);
            }
            finally
            {
                foreach (var cache in gcs) cache.Dispose();
            }
        }

        {
            var a = t.Floats(ff, 6f);
            var b = t.Floats(ff, 2f);
            var ga = Upload(g, a);
            var ca = Upload(c, a);
            g.SwiGlu(ga, Upload(g, b), ga, ff);
            c.SwiGlu(ca, Upload(c, b), ca, ff);
            Check(r, S, $"swiglu {ff}", HostTensors.NormalizedError(ReadAll(g, ga), ReadAll(c, ca)), KernelTolerances.SwiGlu);
            g.Add(ga, Upload(g, b), ff);
            c.Add(ca, Upload(c, b), ff);
            Check(r, S, $"add {ff}", HostTensors.NormalizedError(ReadAll(g, ga), ReadAll(c, ca)), KernelTolerances.SwiGlu);
        }

        {
            var table = t.Create("tok", GgmlType.Q8_0, 1000, d);
            int[] tokens = [3, 999, 0];
            var ge = g.Allocate(tokens.Length * d);
            var ce = c.Allocate(tokens.Length * d);
            g.Embed(g.LoadWeight(table), tokens, ge);
            c.Embed(c.LoadWeight(table), tokens, ce);
            Check(r, S, "embed q8_0 3 tokens", HostTensors.NormalizedError(ReadAll(g, ge), ReadAll(c, ce)), 0);
        }

        foreach (var type in new[] { GgmlType.F16, GgmlType.BF16, GgmlType.F32 })
        {
            int rows = 512;
            var w = t.Create("w", type, rows, d);
            var xv = t.Floats(d);
            var gyy = g.Allocate(rows);
            var cyy = c.Allocate(rows);
            g.MatMul(Upload(g, xv), 1, [new(g.LoadWeight(w), gyy)]);
            c.MatMul(Upload(c, xv), 1, [new(c.LoadWeight(w), cyy)]);
            Check(r, S, $"matvec {type} {rows}x{d}", HostTensors.NormalizedError(ReadAll(g, gyy), ReadAll(c, cyy)), KernelTolerances.FloatMatMul);
        }

        {
            const int n = 8;
            var wq = t.Create("q", GgmlType.Q8_0, d, d, 0.05f);
            var wk = t.Create("k", GgmlType.Q8_0, kvDim, d, 0.05f);
            var wv = t.Create("v", GgmlType.Q8_0, kvDim, d, 0.05f);
            var xv = t.Floats(n * d);
            var gt = new[] { wq, wk, wv }.Select(w => new MatMulTarget(g.LoadWeight(w), g.Allocate(n * w.Rows))).ToArray();
            var ct = new[] { wq, wk, wv }.Select(w => new MatMulTarget(c.LoadWeight(w), c.Allocate(n * w.Rows))).ToArray();
            g.MatMul(Upload(g, xv), n, gt);
            c.MatMul(Upload(c, xv), n, ct);
            double err = 0;
            for (int i = 0; i < 3; i++) err = Math.Max(err, HostTensors.NormalizedError(ReadAll(g, gt[i].Output), ReadAll(c, ct[i].Output)));
            Check(r, S, $"matmul q8_0 fused q/k/v n={n}", err, KernelTolerances.Q8MatMul);
        }

        {
            var sw = Stopwatch.StartNew();
            var weights = TinyLlama.RandomWeights(t, shape);
            using var gm = new TinyLlama(g, shape, weights);
            using var cm = new TinyLlama(c, shape, weights);
            int[] prompt = [1, 200 % shape.Vocab, 3000 % shape.Vocab];
            double err = HostTensors.NormalizedError(gm.Forward(prompt, 0).ToArray(), cm.Forward(prompt, 0));
            for (int step = 0; step < 2; step++)
            {
                int token = 17 + step;
                err = Math.Max(err, HostTensors.NormalizedError(gm.Forward([token], prompt.Length + step).ToArray(), cm.Forward([token], prompt.Length + step)));
            }
            Check(r, S, $"llama forward {shape.Layers} layers d={d}: prefill 3 + 2 decode", err, KernelTolerances.Forward);
            r.Line($"   (forward check {sw.Elapsed.TotalSeconds:F1} s)");
        }
    }
}
