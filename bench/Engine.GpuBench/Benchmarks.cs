using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Kernels;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;
using Engine.Runtime.Llama;
using ILGPU;
using ILGPU.Runtime;
using static Engine.GpuBench.Timing;

namespace Engine.GpuBench;

/// <summary>The benchmark sections. Each checks its kernels against the scalar reference before timing them.</summary>
internal static class Benchmarks
{

    private static void CopyKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];

    /// <summary>Device-to-device copy bandwidth (bytes read + written per second); returns the larger of memcpy and a copy kernel.</summary>
    public static double CopyBandwidth(IlgpuDevice d, Sizes s, Report r)
    {
        var acc = d.Accelerator;
        long n = s.CopyBytes / 4;
        using var a = acc.Allocate1D<float>(n);
        using var b = acc.Allocate1D<float>(n);
        a.MemSetToZero();
        b.MemSetToZero();
        ArrayView<float> av = a.View, bv = b.View;
        double t = Median(() => av.CopyTo(bv), acc.Synchronize, perBatch: 5, batches: 5, warmup: 2);
        double memcpy = 2.0 * s.CopyBytes / t;
        var kernel = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(CopyKernel);
        double tk = Median(() => kernel((int)n, av, bv), acc.Synchronize, perBatch: 5, batches: 5, warmup: 2);
        double kcopy = 2.0 * s.CopyBytes / tk;
        double best = Math.Max(memcpy, kcopy);
        r.Line($"   memcpy {Size(s.CopyBytes)}: {GBs(2.0 * s.CopyBytes, t)} ({Us(t)}); copy kernel: {GBs(2.0 * s.CopyBytes, tk)} ({Us(tk)}); reference = {best / 1e9:F1} GB/s");
        r.Row("copy", $"memcpy D2D {Size(s.CopyBytes)} (read+write)", GBs(2.0 * s.CopyBytes, t), Pct(memcpy, best));
        r.Row("copy", "copy kernel (read+write)", GBs(2.0 * s.CopyBytes, tk), Pct(kcopy, best));
        return best;
    }

    private static string Size(long bytes) => bytes >= 1L << 20 ? $"{bytes >> 20} MiB" : $"{bytes >> 10} KiB";

    private static string Check(Report r, string section, string what, double err, double bound)
    {
        string verdict = err <= bound ? "PASS" : "FAIL";
        r.Line($"   {verdict} {what}: normalized error {err:E2} (bound {bound:E0})");
        r.Row(section, what, $"err {err:E1}", "", verdict);
        return verdict;
    }

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

    /// <summary>
    /// Q8_0 matrix-vector products at the decoder's shapes: correctness, then GB/s of the matvec kernel alone and of the
    /// op (quantize + matvec). The kernel alone is timed three ways: wall clock over 100 eager launches closed by a
    /// synchronize (as before); GPU time between two events around 100 eager launches (still includes idle gaps when the
    /// host enqueues more slowly than the kernel runs); and GPU time of a CUDA graph of 20 launches replayed 10 times
    /// (no host gaps: the kernel's own time, back to back). Matrices smaller than the L2 cache (50 MB on H100/H200) are
    /// re-read from L2 by repeated launches, so only those above it measure DRAM bandwidth.
    /// </summary>
    public static void MatVec(IlgpuBackend g, Sizes s, double copyBw, Report r)
    {
        var c = new ReferenceBackend();
        int seed = 100;
        r.Line($"   matvec kernel: {g.MatVecPath}");
        r.Row("q8_0 matvec", "kernel", g.MatVecPath.Length > 60 ? g.MatVecPath[..60] : g.MatVecPath, "");
        foreach (var (rows, cols) in s.MatVecs)
        {
            using var t = new HostTensors(seed++);
            var w = t.Create("w", GgmlType.Q8_0, rows, cols, 1f / MathF.Sqrt(cols));
            var x = t.Floats(cols);
            using var gw = g.LoadWeight(w);
            using var gx = Upload(g, x);
            using var gy = g.Allocate(rows);
            var cy = c.Allocate(rows);
            MatMulTarget[] targets = [new(gw, gy)];
            g.MatMul(gx, 1, targets);
            c.MatMul(Upload(c, x), 1, [new(c.LoadWeight(w), cy)]);
            double err = HostTensors.NormalizedError(ReadAll(g, gy), ReadAll(c, cy));
            string verdict = err <= KernelTolerances.Q8MatMul ? "PASS" : "FAIL";

            double bytes = w.ByteLength + cols + cols / 32 * 4 + rows * 4.0;
            double tk = Median(() => g.MatVecQ8_0Only(gw, gy, 1), g.Synchronize, perBatch: 100);
            double top = Median(() => g.MatMul(gx, 1, targets), g.Synchronize, perBatch: 100);
            double? eagerGpu = g.GpuSecondsEager(() => g.MatVecQ8_0Only(gw, gy, 1), 100);
            double? graphGpu = g.GpuSecondsRecorded(() => g.MatVecQ8_0Only(gw, gy, 1), perGraph: 20, replays: 10, out string why);
            string l2 = bytes < 50e6 ? " (fits L2: repeated launches read L2)" : "";
            r.Line($"   {verdict} {rows}x{cols}{l2}: err {err:E2}; matvec kernel {Us(tk)} = {GBs(bytes, tk)} ({Pct(bytes / tk, copyBw)} of copy); quantize+matvec {Us(top)} = {GBs(bytes, top)}");
            r.Line(eagerGpu is double e && graphGpu is double gg
                ? $"      kernel GPU time: eager launches (events) {Us(e)} = {GBs(bytes, e)}; graph of 20 launches (events) {Us(gg)} = {GBs(bytes, gg)} ({Pct(bytes / gg, copyBw)} of copy)"
                : $"      kernel GPU time by events/graphs: unavailable ({(g.Device.IsCuda ? why : "not CUDA")})");
            r.Row("q8_0 matvec", $"{rows}x{cols} kernel ({bytes / 1e6:F1} MB){(l2.Length > 0 ? " L2" : "")}", $"{GBs(bytes, tk)} {Us(tk)}", Pct(bytes / tk, copyBw), verdict);
            if (graphGpu is double gpu)
                r.Row("q8_0 matvec", $"{rows}x{cols} kernel, graph-timed", $"{GBs(bytes, gpu)} {Us(gpu)}", Pct(bytes / gpu, copyBw));
            r.Row("q8_0 matvec", $"{rows}x{cols} op (quantize+matvec)", $"{GBs(bytes, top)} {Us(top)}", Pct(bytes / top, copyBw));
        }
    }

    /// <summary>Time per launch of the other decode ops at the TinyLlama-1.1B width (launch-bound at batch 1).</summary>
    private static void EmptyKernel(Index1D i, ArrayView<float> a) { }

    private static void EmptyWideKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d, ArrayView<float> e,
        ArrayView<int> f, ArrayView<int> g, ArrayView<float> h, ArrayView<float> i, ArrayView<float> j, ArrayView<float> k, AttentionParams p) { }

    /// <summary>
    /// Host cost of one ILGPU launch: empty kernels launched back to back, host time of the loop (before waiting)
    /// and total per launch; an implicitly grouped one-view kernel and an explicitly grouped kernel with the
    /// attention kernel's 11 views + parameter struct.
    /// </summary>
    private static void LaunchCost(IlgpuBackend g, Report r)
    {
        var acc = g.Device.Accelerator;
        using var buf = acc.Allocate1D<float>(1024);
        using var ibuf = acc.Allocate1D<int>(1024);
        ArrayView<float> v = buf.View;
        ArrayView<int> iv = ibuf.View;
        var small = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>>(EmptyKernel);
        var wide = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(EmptyWideKernel);
        int group = Math.Min(256, acc.MaxNumThreadsPerGroup);
        group -= group % acc.WarpSize;
        var config = new KernelConfig(new Index2D(32, 1), new Index2D(group, 1));
        int count = Timing.Quick ? 20 : 2000;
        void Measure(string name, Action launch)
        {
            for (int i = 0; i < 10; i++) launch();
            acc.Synchronize();
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++) launch();
            double host = Stopwatch.GetElapsedTime(start).TotalSeconds / count;
            acc.Synchronize();
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds / count;
            r.Line($"   launch cost, {name}: host {Us(host)}, with the device {Us(total)} per launch ({count} back to back)");
            r.Row("launch", name, $"host {Us(host)}, total {Us(total)}", "");
        }
        Measure("empty kernel, 1 view, auto-grouped", () => small(1024, v));
        Measure("empty kernel, 11 views + params, explicit config", () => wide(config, v, v, v, v, v, iv, iv, v, v, v, v, default));
    }

    public static void OpTimings(IlgpuBackend g, Sizes s, double copyBw, Report r)
    {
        LaunchCost(g, r);
        var shape = s.CheckShape;
        int d = shape.Dim, ff = shape.FeedForward, p = s.AttentionPositions;
        using var t = new HostTensors(77);
        using var norm = g.LoadWeight(t.Create("norm", GgmlType.F32, 1, d));
        using var x = Upload(g, t.Floats(d));
        using var y = g.Allocate(d);
        using var q = Upload(g, t.Floats(shape.Heads * shape.HeadDim));
        using var o = g.Allocate(shape.Heads * shape.HeadDim);
        using var h1 = Upload(g, t.Floats(ff));
        using var h2 = Upload(g, t.Floats(ff));
        using var cache = g.AllocateKvCache(1, shape.Context, shape.KvDim);
        var positions = Enumerable.Range(0, p).ToArray();
        using (var k = Upload(g, t.Floats(p * shape.KvDim)))
            g.StoreKv(cache, 0, k, k, p, positions);
        int[] pos = [p - 1];
        void Time(string name, Action op, double bytes)
        {
            double sec = Median(op, g.Synchronize, perBatch: 200);
            r.Line($"   {name}: {Us(sec)} per launch, {GBs(bytes, sec)}");
            r.Row("op", name, Us(sec), Pct(bytes / sec, copyBw));
        }
        Time($"rmsnorm+quantize {d}", () => g.RmsNorm(x, norm, y, 1, d, 1e-5f), 3.0 * d * 4);
        Time($"rope q {shape.Heads}x{shape.HeadDim}", () => g.Rope(q, 1, shape.Heads, shape.HeadDim, pos, 10000f, RopeStyle.Normal), 2.0 * d * 4);
        Time($"attention+quantize decode at {p} positions", () => g.Attention(cache, 0, q, o, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim), 2.0 * p * shape.KvDim * 4);
        {
            // A/B of the decode attention forms side by side: flash (one launch, online softmax, last chunk merges), split
            // positions (chunks + merge, 2 launches), one group per head; plain and fused (RoPE + store + attention).
            bool split = g.SplitAttention, flash = g.FlashDecode;
            int chunk = AttentionKernel.ChunkLengthFor(shape.Context);
            r.Line($"   decode attention form: {g.DecodeAttentionForm(shape.HeadDim)}, {(shape.Context + chunk - 1) / chunk} chunks of {chunk} positions per head when split ({IlgpuBackend.FlashDecodeVariable}=0: split + merge; ENGINE_SPLIT_ATTENTION=0: one group per head)");
            using var k1 = Upload(g, t.Floats(shape.KvDim));
            try
            {
                foreach (var (splitOn, flashOn) in new[] { (true, true), (true, false), (false, false) })
                {
                    g.SplitAttention = splitOn;
                    g.FlashDecode = flashOn;
                    string form = g.DecodeAttentionForm(shape.HeadDim);
                    if (flashOn && !form.StartsWith("flash", StringComparison.Ordinal)) { r.Line($"   flash decode does not fit head dimension {shape.HeadDim} here: skipped"); continue; }
                    Time($"attention+quantize decode at {p} positions, {form} (A/B)",
                        () => g.Attention(cache, 0, q, o, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim), 2.0 * p * shape.KvDim * 4);
                    Time($"rope+store+attention+quantize decode at {p} positions, {form} (A/B)",
                        () => g.RopeStoreKvAttention(cache, 0, q, k1, k1, o, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim, 10000f, RopeStyle.Normal),
                        2.0 * p * shape.KvDim * 4);
                    // GPU time without host launch gaps (what a replayed decode step pays): 20 calls per graph.
                    if (g.GpuSecondsRecorded(() => g.RopeStoreKvAttention(cache, 0, q, k1, k1, o, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim, 10000f, RopeStyle.Normal),
                            20, 20, out string why) is double gpuSec)
                    {
                        r.Line($"   rope+store+attention+quantize decode at {p} positions, {form}, graph-timed: {Us(gpuSec)} per call");
                        r.Row("op", $"rope+store+attention+quantize at {p}, {form}, graph-timed", Us(gpuSec));
                    }
                    else if (g.Device.IsCuda) r.Line($"   graph timing unavailable: {why}");
                }
            }
            finally
            {
                g.SplitAttention = split;
                g.FlashDecode = flash;
            }
        }
        BatchedAttention(g, shape, p, t, Time);
        using (var k1 = Upload(g, t.Floats(shape.KvDim)))
        {
            // The decoder's one-launch attention block: RoPE of q and k, KV store at p-1, attention, quantize.
            Time($"rope+store+attention+quantize decode at {p} positions (fused)",
                () => g.RopeStoreKvAttention(cache, 0, q, k1, k1, o, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim, 10000f, RopeStyle.Normal),
                2.0 * p * shape.KvDim * 4);
            Time($"rope q+k + kv store (fused)",
                () => g.RopeStoreKv(cache, 0, q, k1, k1, 1, pos, shape.Heads, shape.KvHeads, shape.HeadDim, 10000f, RopeStyle.Normal),
                2.0 * (d + 2 * shape.KvDim) * 4);
        }
        Time($"swiglu+quantize {ff}", () => g.SwiGlu(h1, h2, h1, ff), 3.0 * ff * 4);
        Time($"add {d}", () => g.Add(x, y, d), 3.0 * d * 4);
        using (var wo = g.LoadWeight(t.CreateRandomQ8_0("wo", d, d)))
        using (var scratch = g.Allocate(d))
        {
            g.RmsNorm(x, norm, y, 1, d, 1e-5f); // y is quantized by its producer, as the attention output is in decode
            double bytes = d * (double)d / 32 * 34;
            Time($"rmsnorm+quantize, then o-projection {d}x{d} added into the residual (MatMulAdd): 2 launches", () =>
            {
                g.RmsNorm(x, norm, y, 1, d, 1e-5f);
                g.MatMulAdd(y, 1, new MatMulTarget(wo, scratch), x);
            }, bytes);
        }
    }

    /// <summary>
    /// A/B of continuous batching's attention block (RoPE + KV store + attention + quantize) for 16 streams decoding one row
    /// each at about <paramref name="p"/> positions (different per stream): batched over the pooled caches (2 or 3 launches) vs
    /// per segment (2 per stream). The row table is uploaded once, as in a step's first layer.
    /// </summary>
    private static void BatchedAttention(IlgpuBackend g, TinyLlama.Shape shape, int p, HostTensors t, Action<string, Action, double> time)
    {
        const int streams = 16;
        int width = shape.Heads * shape.HeadDim;
        var caches = new KvCache[streams];
        var offsets = new int[streams];
        var counts = new int[streams];
        var positions = new int[streams];
        for (int s = 0; s < streams; s++) (caches[s], offsets[s], counts[s], positions[s]) = (g.AllocateKvCache(1, shape.Context, shape.KvDim), s, 1, Math.Max(0, p - 1 - s));
        try
        {
            using (var kv = Upload(g, t.Floats(p * shape.KvDim)))
                foreach (var c in caches) g.StoreKv(c, 0, kv, kv, p, Enumerable.Range(0, p).ToArray());
            using var q = Upload(g, t.Floats(streams * width));
            using var k = Upload(g, t.Floats(streams * shape.KvDim));
            using var o = g.Allocate(streams * width);
            bool batched = g.BatchedAttention;
            double bytes = 2.0 * streams * p * shape.KvDim * 4;
            try
            {
                foreach (bool form in new[] { true, false })
                {
                    g.BatchedAttention = form;
                    time($"rope+store+attention+quantize, {streams} streams x 1 row at ~{p} positions, {(form ? $"batched ({(g.UsesFlash(shape.HeadDim) ? 2 : 3)} launches)" : $"per segment ({(g.UsesFlash(shape.HeadDim) ? 1 : 2) * streams} launches)")} (A/B, {IlgpuBackend.BatchedAttentionVariable})",
                        () => g.RopeStoreKvAttentionBatch(caches, offsets, counts, 0, q, k, k, o, positions, shape.Heads, shape.KvHeads, shape.HeadDim, 10000f, RopeStyle.Normal),
                        bytes);
                }
            }
            finally
            {
                g.BatchedAttention = batched;
            }
        }
        finally
        {
            foreach (var c in caches) c.Dispose();
        }
    }

    /// <summary>Greedy decode at batch 1 over synthetic Q8_0 weights of a real model's shape, through the ILGPU backend.</summary>
    public static void Decode(IlgpuBackend g, Sizes.Model model, Sizes s, double copyBw, Report r)
    {
        var shape = model.Shape;
        var sw = Stopwatch.StartNew();
        var t = new HostTensors(9);
        TinyLlama llama;
        try
        {
            var weights = TinyLlama.RandomWeights(t, shape, fastQ8: true);
            llama = new TinyLlama(g, shape, weights);
        }
        finally
        {
            t.Dispose(); // the device holds its own copy
        }
        using (llama)
        {
            long bytesPerToken = TinyLlama.WeightBytesPerToken(shape);
            r.Line($"   {model.Name}: {shape}; {bytesPerToken / 1e6:F0} MB of weights per token; generated and uploaded in {sw.Elapsed.TotalSeconds:F1} s");
            int token = 1, pos = 0;
            float[] logits = [];
            for (int i = 0; i < s.DecodeWarmup; i++) { logits = llama.Forward([token], pos++); token = ArgMax(logits); }
            long launches0 = g.KernelLaunches;
            var timer = Stopwatch.StartNew();
            for (int i = 0; i < s.DecodeTokens; i++) { logits = llama.Forward([token], pos++); token = ArgMax(logits); }
            double sec = timer.Elapsed.TotalSeconds / s.DecodeTokens;
            double launches = (double)(g.KernelLaunches - launches0) / s.DecodeTokens;
            bool finite = logits.All(float.IsFinite);
            string verdict = finite ? "PASS" : "FAIL (non-finite logits)";

            // Enqueue-only throughput: the same steps without reading logits back (an upper bound set by launches + kernels).
            var timer2 = Stopwatch.StartNew();
            int pos2 = pos;
            for (int i = 0; i < s.DecodeTokens && pos2 < shape.Context; i++) llama.Enqueue([token], pos2++);
            // Host time to enqueue (before waiting): if it is close to the total the decode is bound by the host's
            // launch cost; if far below, by the GPU's kernels (CUDA queues about a thousand launches ahead).
            double host2 = timer2.Elapsed.TotalSeconds / Math.Max(1, pos2 - pos);
            g.Synchronize();
            double sec2 = timer2.Elapsed.TotalSeconds / Math.Max(1, pos2 - pos);
            r.Line($"   enqueue-only: host {host2 * 1e3:F2} ms/token of {sec2 * 1e3:F2} ms/token ({host2 / Math.Max(1, launches) * 1e6:F1} µs host per launch)");
            r.Row("decode", $"{model.Name} host enqueue time", $"{host2 * 1e3:F2} of {sec2 * 1e3:F2} ms/tok", "");

            double limit = copyBw / bytesPerToken;
            r.Line($"   {verdict} decode {1 / sec:F0} tok/s ({sec * 1e3:F2} ms/token), {launches:F0} launches/token, effective {GBs(bytesPerToken, sec)} ({Pct(bytesPerToken / sec, copyBw)} of copy; bandwidth limit {limit:F0} tok/s); without reading logits {1 / sec2:F0} tok/s");
            r.Row("decode", $"{model.Name} Q8_0 batch 1", $"{1 / sec:F0} tok/s, {launches:F0} launches/tok", Pct(bytesPerToken / sec, copyBw), verdict);
            r.Row("decode", $"{model.Name} enqueue-only", $"{1 / sec2:F0} tok/s", Pct(bytesPerToken / sec2, copyBw));
        }
    }

    /// <summary>
    /// The real decoder (Engine.Runtime's LlamaDecoder) over the ILGPU backend, on a Q8_0 file written by the
    /// synthetic-model generator (`engine synth-model`) to the temp folder: greedy decode at batch 1, op by op
    /// ("eager") and, on CUDA, with each decode step replayed as a CUDA graph, side by side on the same model and
    /// prompt. CHECK: the greedy ids of <see cref="Sizes.GraphCheckTokens"/> replayed steps equal the eager ids
    /// (both run the same kernels on the same values, so they must agree exactly), and graphs did replay.
    /// <see cref="IlgpuBackend.GraphsVariable"/>=0 skips the graph half.
    /// </summary>
    public static void RealDecoder(IlgpuBackend g, SyntheticModelConfig config, Sizes s, double copyBw, Report r)
    {
        string path = Path.Combine(Path.GetTempPath(), $"gpubench-{config.EmbeddingLength}x{config.BlockCount}.q8_0.gguf");
        var sw = Stopwatch.StartNew();
        bool initial = g.GraphsEnabled;
        try
        {
            long size = SyntheticModel.Write(path, config, seed: 1, type: GgmlType.Q8_0);
            r.Line($"   {config.Name}: wrote {size / 1e6:F0} MB in {sw.Elapsed.TotalSeconds:F1} s");
            sw.Restart();
            using var model = LlamaModel.Load(path, g);
            r.Line($"   loaded in {sw.Elapsed.TotalSeconds:F1} s");
            double bytes = WeightBytes(model);

            var eager = DecodeRun(g, model, s, graphs: false);
            Print("eager (op by op)", "", eager);
            bool wanted = Environment.GetEnvironmentVariable(IlgpuBackend.GraphsVariable) != "0";
            if (!g.Device.IsCuda || !wanted)
            {
                r.Line($"   graphs: not run ({(wanted ? "not CUDA" : IlgpuBackend.GraphsVariable + "=0")})");
                return;
            }
            var replayed = DecodeRun(g, model, s, graphs: true);
            Print("CUDA graphs", ", graphs", replayed);
            r.Line($"   graphs: {g.GraphStatus}; {replayed.GraphLaunches} graph launches in {s.GraphCheckTokens + s.DecodeWarmup + s.DecodeTokens} decode steps; speed-up {eager.SecondsPerToken / replayed.SecondsPerToken:F2}x");

            int firstDiff = -1;
            for (int i = 0; i < eager.Ids.Length && firstDiff < 0; i++)
                if (eager.Ids[i] != replayed.Ids[i]) firstDiff = i;
            string idCheck = firstDiff < 0 ? "PASS" : $"FAIL (first difference at step {firstDiff}: eager {eager.Ids[firstDiff]}, graphs {replayed.Ids[firstDiff]})";
            r.Line($"   {idCheck} greedy ids of {eager.Ids.Length} steps, graphs vs eager: [{string.Join(' ', replayed.Ids.Take(12))} ...]");
            r.Row("decoder", $"{config.Name} ids graphs == eager ({eager.Ids.Length} steps)", firstDiff < 0 ? "equal" : "differ", "", idCheck);
            string replayCheck = replayed.GraphLaunches > 0 ? "PASS" : $"FAIL (no graph replayed: {g.GraphStatus})";
            r.Row("decoder", $"{config.Name} graph replay active", $"{replayed.GraphLaunches} graphs", "", replayCheck);
            if (replayed.GraphLaunches == 0) r.Line($"   {replayCheck}");

            void Print(string mode, string suffix, DecodeFigures f)
            {
                string verdict = f.Finite ? "PASS" : "FAIL (non-finite logits)";
                r.Line($"   {verdict} LlamaDecoder greedy, {mode}: {1 / f.SecondsPerToken:F0} tok/s ({f.SecondsPerToken * 1e3:F2} ms/token), {f.LaunchesPerToken:F0} kernels/token, "
                     + $"{f.GraphsPerToken:F2} graph launches/token, {bytes / 1e6:F0} MB weights, effective {GBs(bytes, f.SecondsPerToken)} ({Pct(bytes / f.SecondsPerToken, copyBw)} of copy)");
                r.Row("decoder", $"{config.Name} (LlamaDecoder, Q8_0 file{suffix})", $"{1 / f.SecondsPerToken:F0} tok/s, {f.LaunchesPerToken:F0} kernels/tok", Pct(bytes / f.SecondsPerToken, copyBw), verdict);
            }
        }
        finally
        {
            g.GraphsEnabled = initial;
            File.Delete(path);
        }
    }

    private sealed record DecodeFigures(int[] Ids, double SecondsPerToken, double LaunchesPerToken, double GraphsPerToken, long GraphLaunches, bool Finite);

    /// <summary>One decoder on <paramref name="model"/>: prompt, <see cref="Sizes.GraphCheckTokens"/> greedy ids, warm-up, then timed greedy steps.</summary>
    private static DecodeFigures DecodeRun(IlgpuBackend g, LlamaModel model, Sizes s, bool graphs)
    {
        g.GraphsEnabled = graphs;
        long graphs0 = g.GraphLaunches;
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 512 });
        var prompt = new[] { 1, 400, 401, 402, 403, 404, 405, 406 };
        var logits = decoder.Forward(prompt);
        int token = ArgMax(logits);
        var ids = new int[s.GraphCheckTokens];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = token;
            token = ArgMax(decoder.Forward(token));
        }
        for (int i = 0; i < s.DecodeWarmup; i++) token = ArgMax(decoder.Forward(token));
        long launches0 = g.KernelLaunches, timedGraphs0 = g.GraphLaunches;
        var timer = Stopwatch.StartNew();
        for (int i = 0; i < s.DecodeTokens; i++)
        {
            logits = decoder.Forward(token);
            token = ArgMax(logits);
        }
        double sec = timer.Elapsed.TotalSeconds / s.DecodeTokens;
        bool finite = true;
        foreach (float v in logits) finite &= float.IsFinite(v);
        return new DecodeFigures(ids, sec, (double)(g.KernelLaunches - launches0) / s.DecodeTokens,
            (double)(g.GraphLaunches - timedGraphs0) / s.DecodeTokens, g.GraphLaunches - graphs0, finite);
    }

    /// <summary>Bytes of the matrices a decode step reads (every weight but the token embedding, which is gathered one row).</summary>
    private static double WeightBytes(LlamaModel model)
    {
        double total = 0;
        foreach (var t in model.File.Tensors)
            if (t.Name != "token_embd.weight" || !model.File.Tensors.Any(o => o.Name == "output.weight"))
                total += t.ByteSize;
        return total;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
