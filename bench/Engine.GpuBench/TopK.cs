using System.Runtime.InteropServices;
using Engine.Kernels;
using static Engine.GpuBench.Timing;

namespace Engine.GpuBench;

/// <summary>
/// Top-k over N × 384 int8 vectors (issue 3: 1M × 384, top-50, batch 1 ≥ 2,000 q/s), every form of
/// <see cref="IlgpuVectorIndex"/> side by side in one run on one index: the previous f32 scan + tree selection, the
/// wide scan (int16 query, 16-byte loads, dp2a) + tree selection, and the wide scan + tile selection (the default).
/// For each: a check against an f64 brute force, q/s at batch 1 (unfiltered and with a ~50 % filter) with the
/// scan / selection split, and batch 16. On CUDA the previous and the default form also run on a second device
/// whose context is compiled at the other ILGPU optimization level (O1 vs O2).
/// </summary>
internal static class TopK
{
    private const int Dims = 384;

    private readonly record struct Form(string Name, bool Wide, bool Tiles);

    private static readonly Form[] Forms =
    [
        new("previous (f32 scan + tree)", false, false),
        new("wide scan + tree", true, false),
        new("wide scan + tile select", true, true),
    ];

    public static void Run(IlgpuDevice d, Sizes s, double copyBw, Report r)
    {
        int count = s.TopKCount, k = s.TopK;
        var rng = new Random(5);
        var raw = new byte[(long)count * Dims];
        rng.NextBytes(raw);
        var vectors = MemoryMarshal.Cast<byte, sbyte>(raw.AsSpan());
        var scales = new float[count];
        for (int i = 0; i < count; i++) scales[i] = 0.001f + 0.01f * (float)rng.NextDouble();
        var query = new float[Dims];
        for (int i = 0; i < Dims; i++) query[i] = (float)(rng.NextDouble() * 2 - 1);
        var filter = new uint[(count + 31) / 32];
        for (int i = 0; i < filter.Length; i++) filter[i] = (uint)rng.Next() ^ ((uint)rng.Next() << 16);
        var batch = new float[s.TopKBatch * Dims];
        for (int i = 0; i < batch.Length; i++) batch[i] = (float)(rng.NextDouble() * 2 - 1);
        var expected = new[] { BruteForce(raw, scales, query, count, k, null), BruteForce(raw, scales, query, count, k, filter) };

        r.Line($"   {WideScanVariable()} {TileSelectVariable()}; this device's context: ILGPU {Level(d)}");
        var rates = new double[Forms.Length]; // batch-1 unfiltered q/s per form
        using (var index = new IlgpuVectorIndex(d, vectors, scales, Dims))
        {
            for (int i = 0; i < Forms.Length; i++)
                rates[i] = Measure(index, Forms[i], Level(d), query, filter, batch, expected, raw, scales, s, copyBw, r);
        }
        r.Line($"   batch 1, unfiltered, {Level(d)}: {Forms[2].Name} / {Forms[0].Name} = {rates[2] / rates[0]:F2}x; {Forms[1].Name} / previous = {rates[1] / rates[0]:F2}x");
        r.Row("top-k", $"batch 1 speed-up over the previous form, {Level(d)}", $"{rates[2] / rates[0]:F2}x (wide scan alone {rates[1] / rates[0]:F2}x)");

        if (!d.IsCuda) return;
        // The same kernels compiled at the other optimization level, in a context of their own.
        bool otherO2 = d.Optimization != ILGPU.OptimizationLevel.O2;
        if (!IlgpuDevice.TryCreateCuda(out var other, out string reason, otherO2))
        {
            r.Line($"   second CUDA context unavailable: {reason}");
            return;
        }
        using (other)
        using (var index = new IlgpuVectorIndex(other, vectors, scales, Dims))
        {
            foreach (var form in new[] { Forms[0], Forms[2] })
                Measure(index, form, Level(other), query, filter, batch, expected, raw, scales, s, copyBw, r);
        }
    }

    /// <summary>O1 or O2 (ILGPU names O1 "Release").</summary>
    private static string Level(IlgpuDevice d) => d.Optimization switch
    {
        ILGPU.OptimizationLevel.O2 => "O2",
        ILGPU.OptimizationLevel.Debug => "O0",
        _ => "O1",
    };

    private static string WideScanVariable() =>
        $"{IlgpuVectorIndex.WideScanVariable}={Environment.GetEnvironmentVariable(IlgpuVectorIndex.WideScanVariable) ?? "(unset)"}";

    private static string TileSelectVariable() =>
        $"{IlgpuVectorIndex.TileSelectVariable}={Environment.GetEnvironmentVariable(IlgpuVectorIndex.TileSelectVariable) ?? "(unset)"}";

    /// <summary>Checks and times one form; returns its batch-1 unfiltered queries/s.</summary>
    private static double Measure(IlgpuVectorIndex index, Form form, string level, float[] query, uint[] filter, float[] batch,
        (int Id, double Score)[][] expected, byte[] raw, float[] scales, Sizes s, double copyBw, Report r)
    {
        index.WideScan = form.Wide;
        index.TileSelect = form.Tiles;
        int count = index.Count, k = s.TopK, nb = s.TopKBatch;
        var ids = new int[nb * k];
        var scores = new float[nb * k];
        double bytes = (double)count * Dims + count * 4.0;
        double tolerance = form.Wide ? KernelTolerances.WideScore : KernelTolerances.Score;
        string tag = $"{form.Name}, {level}";
        double unfiltered = 0;
        r.Line($"   -- {tag}");
        foreach (bool filtered in new[] { false, true })
        {
            var f = filtered ? filter : default;
            index.Search(query, k, f, ids, scores);
            var want = expected[filtered ? 1 : 0];
            double scale = Math.Abs(want[0].Score);
            int bad = 0;
            for (int i = 0; i < k; i++)
                if (Math.Abs(scores[i] - want[i].Score) > tolerance * scale || ids[i] < 0 ||
                    Math.Abs(ScoreOf(raw, scales, query, ids[i]) - scores[i]) > tolerance * scale) bad++;
            string verdict = bad == 0 ? "PASS" : $"FAIL ({bad} of {k} ranks differ)";
            bool fellBack = index.LastSelectFellBack;
            double sec = Median(() => index.Search(query, k, f, ids, scores), () => { }, perBatch: Math.Max(1, s.TopKQueries / 5), batches: 5, warmup: 2);
            int launches = index.LastLaunches;
            // Where the query's time goes: the similarity scan (with the query upload) vs selection + read-back.
            index.ScanOnly = true;
            double scan;
            try
            {
                scan = Median(() => index.Search(query, k, f, ids, scores), () => { }, perBatch: Math.Max(1, s.TopKQueries / 5), batches: 5, warmup: 2);
            }
            finally
            {
                index.ScanOnly = false;
            }
            string what = $"{count}x{Dims} int8 top-{k} batch 1{(filtered ? ", filter ~50%" : "")}";
            r.Line($"   {verdict} {what}: {1 / sec:F0} queries/s ({Us(sec)}/query, {launches} launches{(fellBack ? ", tile selection overflowed" : "")}), "
                 + $"{GBs(bytes, sec)} ({Pct(bytes / sec, copyBw)} of copy)");
            r.Line($"      split: similarity scan {Us(scan)} ({GBs(bytes, scan)}, {Pct(bytes / scan, copyBw)} of copy) + selection and read-back {Us(Math.Max(0, sec - scan))}");
            if (!filtered) unfiltered = 1 / sec;
            r.Row("top-k", $"{what} [{tag}]", $"{1 / sec:F0} q/s; scan / select {Us(scan)} / {Us(Math.Max(0, sec - scan))}", Pct(bytes / scan, copyBw), verdict);
        }
        {
            double sec = Median(() => index.Search(batch, k, default, ids, scores), () => { }, perBatch: Math.Max(1, s.TopKQueries / 10), batches: 3, warmup: 1);
            r.Line($"   {count}x{Dims} top-{k} batch {nb}: {nb / sec:F0} queries/s ({Us(sec)}/batch)");
            r.Row("top-k", $"{count}x{Dims} int8 top-{k} batch {nb} [{tag}]", $"{nb / sec:F0} q/s", Pct(bytes * nb / sec, copyBw));
        }
        return unfiltered;
    }

    private static double ScoreOf(byte[] raw, float[] scales, float[] q, int v)
    {
        double sum = 0;
        long at = (long)v * Dims;
        for (int j = 0; j < Dims; j++) sum += (double)q[j] * (sbyte)raw[at + j];
        return sum * scales[v];
    }

    private static (int Id, double Score)[] BruteForce(byte[] raw, float[] scales, float[] q, int count, int k, uint[]? filter)
    {
        var all = new double[count];
        Parallel.For(0, count, v => all[v] = filter is not null && ((filter[v >> 5] >> (v & 31)) & 1) == 0 ? double.NegativeInfinity : ScoreOf(raw, scales, q, v));
        return Enumerable.Range(0, count).Select(v => (v, all[v])).OrderByDescending(e => e.Item2).ThenBy(e => e.v).Take(k).ToArray();
    }
}
