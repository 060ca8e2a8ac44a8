using System.Diagnostics;
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
internal static partial class Benchmarks
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
            try
            {
                MatVecVariants(g, w, gw, gy, cy, c, rows, cols, bytes, copyBw, r);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Only the comparison is lost; the next shapes' rows above still run.
                r.Row("q8_0 variant", $"{rows}x{cols} per-variant timing", $"{ex.GetType().Name}: {ex.Message}", "", "FAIL");
                r.Line($"      variants at {rows}x{cols}: FAIL {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    /// <summary>
    /// Every matrix-vector variant the backend's start-up selection timed (<see cref="IlgpuBackend.MatVecVariantNames"/>, CUDA
    /// only), at this shape: checked against the reference (<see cref="KernelTolerances.Q8MatMul"/>), then GPU time per launch
    /// in graphs two ways: "L2" re-reads one copy of the weight, 20 launches a graph (as the rows above); "DRAM" cycles through
    /// enough copies (≥ 120 MB, over the 50 MB L2 of H100/H200; at least 20 launches, one per copy) that each launch reads
    /// its weight from DRAM, as a decode step does. The selection itself times only 32768x2048; this shows whether another variant wins at the decode shapes.
    /// </summary>
    private static void MatVecVariants(IlgpuBackend g, Engine.Core.Tensors.TensorView w, DeviceWeight gw, DeviceBuffer gy, DeviceBuffer cy, ReferenceBackend c,
        int rows, int cols, double bytes, double copyBw, Report r)
    {
        var names = g.MatVecVariantNames;
        if (names.Count == 0)
        {
            r.Line("      variants: none timed (the start-up selection runs on CUDA only)");
            return;
        }
        int copies = (int)Math.Max(1, Math.Ceiling(120e6 / bytes));
        var extra = new List<DeviceWeight>();
        try
        {
            for (int i = 1; i < copies; i++) extra.Add(g.LoadWeight(w));
            DeviceWeight[] all = [gw, .. extra];
            var parts = new List<string>();
            (string Name, double Seconds) bestDram = ("", double.MaxValue), bestL2 = ("", double.MaxValue);
            string noDram = "";
            for (int v = 0; v < names.Count; v++)
            {
                g.MatVecQ8_0Only(gw, gy, 1, v);
                g.Synchronize();
                double err = HostTensors.NormalizedError(ReadAll(g, gy), ReadAll(c, cy));
                string verdict = err <= KernelTolerances.Q8MatMul ? "PASS" : "FAIL";
                int variant = v, next = 0;
                double? l2 = g.GpuSecondsRecorded(() => g.MatVecQ8_0Only(gw, gy, 1, variant), perGraph: 20, replays: 10, out _);
                double? dram = g.GpuSecondsRecorded(() => g.MatVecQ8_0Only(all[next++ % all.Length], gy, 1, variant),
                    perGraph: Math.Max(20, copies), replays: 10, out string why); // every copy once per graph at least
                string how = "";
                if (l2 is null && dram is null)
                {
                    // No graphs: eager launches between events (includes the host's launch gaps).
                    how = " (eager)";
                    l2 = g.GpuSecondsEager(() => g.MatVecQ8_0Only(gw, gy, 1, variant), 100);
                    dram = g.GpuSecondsEager(() => g.MatVecQ8_0Only(all[next++ % all.Length], gy, 1, variant), Math.Max(100, copies));
                }
                string Fmt(double? t) => t is double s ? $"{Us(s)} = {GBs(bytes, s)} ({Pct(bytes / s, copyBw)})" : "n/a";
                parts.Add($"{names[v]}: DRAM {Fmt(dram)}, L2 {Fmt(l2)}{how}{(verdict == "PASS" ? "" : $" FAIL err {err:E1}")}");
                if (verdict != "PASS") r.Row("q8_0 variant", $"{rows}x{cols} {names[v]}", $"err {err:E1}", "", verdict);
                else
                {
                    if (dram is double d && d < bestDram.Seconds) bestDram = (names[v], d);
                    if (l2 is double t && t < bestL2.Seconds) bestL2 = (names[v], t);
                }
                if (dram is null) noDram = why;
            }
            r.Line($"      variants at {rows}x{cols} (graph-timed; DRAM = cycling {copies} copies of the weight): " + string.Join("; ", parts));
            // One row per shape and source in the table (every variant's figures are in the line above).
            if (bestDram.Name.Length > 0)
                r.Row("q8_0 variant", $"{rows}x{cols} fastest from DRAM ({copies} copies): {bestDram.Name}", $"{GBs(bytes, bestDram.Seconds)} {Us(bestDram.Seconds)}",
                    Pct(bytes / bestDram.Seconds, copyBw));
            else r.Row("q8_0 variant", $"{rows}x{cols} from DRAM", $"n/a ({noDram})");
            if (bestL2.Name.Length > 0)
                r.Row("q8_0 variant", $"{rows}x{cols} fastest from L2: {bestL2.Name}", $"{GBs(bytes, bestL2.Seconds)} {Us(bestL2.Seconds)}", Pct(bytes / bestL2.Seconds, copyBw));
        }
        finally
        {
            foreach (var e in extra) e.Dispose();
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
        // A/B of the backend's folds (IlgpuBackend.Fusion.cs): the norm before q/k/v, and the norm + SwiGLU around gate/up,
        // as separate launches and folded into the products' kernels.
        using (var wq = g.LoadWeight(t.CreateRandomQ8_0("wq", d, d)))
        using (var wk = g.LoadWeight(t.CreateRandomQ8_0("wk", shape.KvDim, d)))
        using (var wv = g.LoadWeight(t.CreateRandomQ8_0("wv", shape.KvDim, d)))
        using (var wg = g.LoadWeight(t.CreateRandomQ8_0("wg", ff, d)))
        using (var wu = g.LoadWeight(t.CreateRandomQ8_0("wu", ff, d)))
        using (var oq = g.Allocate(d))
        using (var ok = g.Allocate(shape.KvDim))
        using (var ov = g.Allocate(shape.KvDim))
        using (var og = g.Allocate(ff))
        using (var ou = g.Allocate(ff))
        {
            MatMulTarget[] qkv = [new(wq, oq), new(wk, ok), new(wv, ov)];
            MatMulTarget[] gateUp = [new(wg, og), new(wu, ou)];
            double qkvBytes = (d + 2.0 * shape.KvDim) * d / 32 * 34, gateUpBytes = 2.0 * ff * d / 32 * 34;
            bool norm0 = g.FusedNorm, swiGlu0 = g.FusedSwiGlu;
            int maxRows0 = g.FoldNormMaxRows, maxCols0 = g.FoldMaxCols;
            r.Line($"   folds: {g.FusionStatus} ({IlgpuBackend.FusedNormVariable}=0 / {IlgpuBackend.FusedSwiGluVariable}=0 turn them off)");
            try
            {
                bool spread0 = g.GateUpSpread;
                foreach (bool fold in new[] { false, true })
                {
                    g.FusedNorm = g.FusedSwiGlu = fold;
                    // Folded means folded here, whatever the shape limits of the decoder's default policy say.
                    (g.FoldNormMaxRows, g.FoldMaxCols) = fold ? (int.MaxValue, int.MaxValue) : (maxRows0, maxCols0);
                    Time($"rmsnorm + q/k/v {d + 2 * shape.KvDim}x{d}, {(fold ? "folded: 1 launch" : "unfolded: 2 launches")} (A/B)", () =>
                    {
                        g.RmsNorm(x, norm, y, 1, d, 1e-5f);
                        g.MatMul(y, 1, qkv);
                    }, qkvBytes);
                    // The folded gate/up in 32-output groups (the form before the sixth session) and spread (one output a warp).
                    foreach (bool spread in fold ? new[] { false, true } : new[] { spread0 })
                    {
                        g.GateUpSpread = spread;
                        Time($"rmsnorm + gate/up {ff}x{d} + swiglu, {(fold ? $"folded: 1 launch, {(spread ? "spread" : "32-output groups")}" : "unfolded: 3 launches")} (A/B, {IlgpuBackend.GateUpSpreadVariable})", () =>
                        {
                            g.RmsNorm(x, norm, y, 1, d, 1e-5f);
                            g.MatMul(y, 1, gateUp);
                            g.SwiGlu(og, ou, og, ff);
                        }, gateUpBytes);
                    }
                    g.GateUpSpread = spread0;
                }
            }
            finally
            {
                g.FusedNorm = norm0;
                g.FusedSwiGlu = swiGlu0;
                (g.FoldNormMaxRows, g.FoldMaxCols) = (maxRows0, maxCols0);
            }
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
}
