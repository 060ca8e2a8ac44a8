using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Kernels;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.GpuBench;

/// <summary>
/// The encoder (BERT) ops on the device: each checked against <see cref="ReferenceBackend"/> on fresh random
/// inputs with the bounds of <see cref="EncoderKernelTolerances"/>, then timed at all-MiniLM-L6-v2's shape
/// (hidden 384, 12 heads of 32, intermediate 1536) for a batch of 32 sequences of 128 tokens.
/// </summary>
internal static class EncoderOps
{
    private const string Section = "encoder";

    public static void Run(IlgpuBackend g, bool full, Report r)
    {
        var c = new ReferenceBackend();
        using var t = new HostTensors(4321);
        // MiniLM widths on a GPU; tiny ones on the CPU accelerator.
        int dim = full ? 384 : 48, heads = full ? 12 : 2, headDim = full ? 32 : 8, ff = full ? 1536 : 96;
        int[] lengths = full ? [128, 77, 16, 1, 0, 33] : [9, 4, 1];
        int n = lengths.Sum();

        {
            var w = t.Create("ln.weight", GgmlType.F32, 1, dim);
            var b = t.Create("ln.bias", GgmlType.F32, 1, dim, 0.5f);
            var x = t.Floats(n * dim, 2f);
            for (int i = 0; i < x.Length; i++) x[i] += 20f * (i / dim % 3) - 10f; // rows away from zero
            var gx = Upload(g, x);
            var cy = c.Allocate(n * dim);
            g.LayerNorm(gx, g.LoadWeight(w), g.LoadWeight(b), gx, n, dim, 1e-12f);
            c.LayerNorm(Upload(c, x), c.LoadWeight(w), c.LoadWeight(b), cy, n, dim, 1e-12f);
            Check(r, $"layernorm {n}x{dim} in place", NormalizedError(ReadAll(g, gx), ReadAll(c, cy)), EncoderKernelTolerances.LayerNorm);
        }
        {
            var x = t.Floats(n * ff, 6f);
            var gx = Upload(g, x);
            var gy = g.Allocate(n * ff);
            var cx = Upload(c, x);
            g.Gelu(gx, gy, n * ff);
            c.Gelu(cx, cx, n * ff);
            Check(r, $"gelu {n * ff}", NormalizedError(ReadAll(g, gy), ReadAll(c, cx)), EncoderKernelTolerances.Gelu);
        }
        {
            var x = t.Floats(n * ff, 10f);
            var gx = Upload(g, x);
            var cx = Upload(c, x);
            g.Softmax(gx, n, ff);
            c.Softmax(cx, n, ff);
            Check(r, $"softmax {n}x{ff}", NormalizedError(ReadAll(g, gx), ReadAll(c, cx)), EncoderKernelTolerances.Softmax);
        }
        {
            int width = heads * headDim;
            var q = t.Floats(n * width, 2f);
            var k = t.Floats(n * width, 2f);
            var v = t.Floats(n * width);
            float scale = 1f / MathF.Sqrt(headDim);
            var go = g.Allocate(n * width);
            var co = c.Allocate(n * width);
            g.EncoderAttention(Upload(g, q), Upload(g, k), Upload(g, v), go, lengths, heads, headDim, scale);
            c.EncoderAttention(Upload(c, q), Upload(c, k), Upload(c, v), co, lengths, heads, headDim, scale);
            Check(r, $"encoder attention [{string.Join(",", lengths)}] {heads}x{headDim}",
                NormalizedError(ReadAll(g, go), ReadAll(c, co)), EncoderKernelTolerances.EncoderAttention);
        }

        // Timings: one batch of 32 sequences of 128 tokens (4 on the CPU accelerator).
        int sequences = full ? 32 : 2, len = full ? 128 : 8;
        int rows = sequences * len;
        int[] batch = Enumerable.Repeat(len, sequences).ToArray();
        {
            var w = g.LoadWeight(t.Create("ln.weight", GgmlType.F32, 1, dim));
            var b = g.LoadWeight(t.Create("ln.bias", GgmlType.F32, 1, dim));
            var x = Upload(g, t.Floats(rows * dim, 2f));
            var y = g.Allocate(rows * dim);
            double s = Timing.Median(() => g.LayerNorm(x, w, b, y, rows, dim, 1e-12f), g.Synchronize, perBatch: 50);
            Time(r, $"layernorm {rows}x{dim}", s, 2.0 * rows * dim * sizeof(float));
        }
        {
            var x = Upload(g, t.Floats(rows * ff, 4f));
            var y = g.Allocate(rows * ff);
            double s = Timing.Median(() => g.Gelu(x, y, rows * ff), g.Synchronize, perBatch: 50);
            Time(r, $"gelu {rows}x{ff}", s, 2.0 * rows * ff * sizeof(float));
            s = Timing.Median(() => g.Softmax(y, rows, ff), g.Synchronize, perBatch: 50);
            Time(r, $"softmax {rows}x{ff}", s, 2.0 * rows * ff * sizeof(float));
        }
        {
            int width = heads * headDim;
            var q = Upload(g, t.Floats(rows * width, 2f));
            var k = Upload(g, t.Floats(rows * width, 2f));
            var v = Upload(g, t.Floats(rows * width));
            var o = g.Allocate(rows * width);
            float scale = 1f / MathF.Sqrt(headDim);
            double s = Timing.Median(() => g.EncoderAttention(q, k, v, o, batch, heads, headDim, scale), g.Synchronize, perBatch: 10);
            double flops = 4.0 * sequences * len * len * width; // q·k and p·v, 2 flops per multiply-add
            r.Line($"   encoder attention {sequences}x{len} tokens, {heads}x{headDim}: {Timing.Us(s)}, {flops / s / 1e9:F1} GFLOP/s");
            r.Row(Section, $"attention {sequences}x{len} {heads}x{headDim}", $"{Timing.Us(s)}, {flops / s / 1e9:F0} GFLOP/s");
        }
    }

    private static void Check(Report r, string what, double err, double bound)
    {
        string verdict = err <= bound ? "PASS" : "FAIL";
        r.Line($"   {verdict} {what}: normalized error {err:E2} (bound {bound:E0})");
        r.Row(Section, what, $"err {err:E1}", "", verdict);
    }

    private static void Time(Report r, string what, double seconds, double bytes)
    {
        r.Line($"   {what}: {Timing.Us(seconds)}, {Timing.GBs(bytes, seconds)} read+written");
        r.Row(Section, what, $"{Timing.Us(seconds)}, {Timing.GBs(bytes, seconds)}");
    }
}
