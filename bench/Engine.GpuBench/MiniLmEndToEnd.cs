using System.Diagnostics;
using Engine.Cpu;
using Engine.Kernels;
using Engine.Runtime.Encoding;

namespace Engine.GpuBench;

/// <summary>
/// all-MiniLM-L6-v2 end to end on the device: the converted Q8_0 weights (a cache file carried beside the
/// benchmark, since the package's 91 MB assembly is over the device tool's transfer limit) run through
/// <see cref="MiniLmEncoder"/> on the ILGPU backend and on the CPU backend; the embeddings must agree
/// (cosine ≥ <see cref="MinCosine"/>: the same Q8_0 weights and activation quantizer, f32 accumulation
/// in a different order), then texts/s at batch 1 and batch 64 on the device.
/// </summary>
internal static class MiniLmEndToEnd
{
    private const string Section = "minilm";

    /// <summary>Both backends quantize activations identically; differences come from summation order only.</summary>
    private const double MinCosine = 0.999;

    private static readonly string[] Nouns = ["linen summer dress", "leather crossbody bag", "trail running shoes", "stainless steel saucepan",
        "wireless earbuds case", "merino wool sweater", "ceramic coffee mug", "waterproof hiking jacket"];
    private static readonly string[] Modifiers = ["red", "navy blue", "lightweight", "for women, size M", "under $50", "with free shipping",
        "organic cotton", "handmade in Portugal"];

    public static void Run(IlgpuBackend gpu, bool full, Report r)
    {
        if (!full)
        {
            r.Line("   SKIP minilm: CUDA only (the whole encoder on the ILGPU CPU accelerator takes minutes)");
            r.Row(Section, "end to end", "skipped: cpu accelerator");
            return;
        }
        string? cacheDir = Environment.GetEnvironmentVariable("ENGINE_CACHE_DIR");
        if (string.IsNullOrEmpty(cacheDir) || !Directory.Exists(cacheDir))
        {
            r.Line("   SKIP minilm: ENGINE_CACHE_DIR is not set to a folder with the converted all-MiniLM-L6-v2 Q8_0 file");
            r.Row(Section, "end to end", "skipped: no model");
            return;
        }
        const int count = 64;
        var texts = new List<string>(count);
        for (int i = 0; i < count; i++) texts.Add($"{Modifiers[i % Modifiers.Length]} {Nouns[i / Modifiers.Length % Nouns.Length]} #{i}");

        using var cpu = new CpuBackend(Math.Min(Environment.ProcessorCount, 16));
        using var onCpu = MiniLmEncoder.CreateDefault(cpu, EncoderPrecision.Q8_0, cacheDir);
        using var onGpu = MiniLmEncoder.CreateDefault(gpu, EncoderPrecision.Q8_0, cacheDir);
        int dim = onCpu.Dimensions;
        var expected = new float[count * dim];
        var actual = new float[count * dim];
        onCpu.Embed(texts, expected);
        onGpu.Embed(texts, actual);
        double minCos = 1;
        for (int t = 0; t < count; t++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int i = 0; i < dim; i++)
            {
                double a = actual[t * dim + i], b = expected[t * dim + i];
                dot += a * b; na += a * a; nb += b * b;
            }
            minCos = Math.Min(minCos, dot / Math.Sqrt(na * nb));
        }
        string verdict = minCos >= MinCosine ? "PASS" : "FAIL";
        r.Line($"   {verdict} minilm q8_0 {count} texts: min cosine device vs CPU backend {minCos:F6} (bound {MinCosine})");
        r.Row(Section, $"q8_0 {count} texts cosine vs cpu", $"{minCos:F6}", "", verdict);

        foreach (int batch in new[] { 1, 64 })
        {
            var batchTexts = texts.Take(batch).ToList();
            var output = new float[batch * dim];
            onGpu.Embed(batchTexts, output); // warm-up
            int reps = Math.Max(5, 640 / batch);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) onGpu.Embed(batchTexts, output);
            double perText = sw.Elapsed.TotalSeconds / (reps * (double)batch);
            r.Line($"   minilm q8_0 batch {batch}: {1 / perText:F0} texts/s ({sw.Elapsed.TotalMilliseconds / reps:F2} ms per call)");
            r.Row(Section, $"q8_0 batch {batch}", $"{1 / perText:F0} texts/s");
        }
    }
}
