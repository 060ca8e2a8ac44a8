using System.Diagnostics;
using Engine.Core.Gguf;
using Engine.Kernels;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tokenization;

namespace Engine.GpuBench;

/// <summary>
/// Continuous batching on the device (issue 5's target: aggregate decode tok/s of 16 concurrent streams ≥ 4× one
/// stream, on the SmolLM2-135M shaped Q8_0 file): the real <see cref="GenerationScheduler"/> over the ILGPU backend,
/// measured by <see cref="StreamsMeasurement"/> (the measurement <c>engine bench streams</c> runs on the CPU
/// backend): 1 stream vs 16 streams decode tok/s side by side, their ratio, and time to first token idle and with
/// 8 streams decoding. Also a check that batching changes no text: with one prompt, every stream of a batched
/// round must produce the single stream's greedy text.
/// </summary>
internal static class Streams
{
    /// <summary>Concurrent streams of the issue's figure, and the streams decoding during the TTFT probes.</summary>
    private const int BatchedStreams = 16, TtftRunning = 8;

    /// <summary>
    /// Runs the measurement on <paramref name="g"/>: the SmolLM2-135M shape on CUDA (64 tokens per stream, 3 rounds:
    /// a few seconds), the tiny shape on the CPU accelerator (the smoke: it only proves the section runs).
    /// </summary>
    public static void Run(IlgpuBackend g, Report r)
    {
        bool cuda = g.Device.IsCuda;
        var config = cuda ? SyntheticModelConfig.SmolLM2_135M : SyntheticModelConfig.Tiny;
        var settings = cuda
            ? new StreamsMeasurementSettings(BatchedStreams, Tokens: 64, Rounds: 3, TtftRunning, TtftProbes: 5)
            : new StreamsMeasurementSettings(4, Tokens: 4, Rounds: 1, TtftRunning: 2, TtftProbes: 1);
        int[] prompt = [1, 400, 401, 402, 403, 404, 405, 406];   // 8 tokens, as the decoder section's prompt

        string path = Path.Combine(Path.GetTempPath(), $"gpubench-streams-{config.EmbeddingLength}x{config.BlockCount}.q8_0.gguf");
        var sw = Stopwatch.StartNew();
        try
        {
            long size = SyntheticModel.Write(path, config, seed: 1, type: GgmlType.Q8_0);
            r.Line($"   {config.Name}: wrote {size / 1e6:F0} MB in {sw.Elapsed.TotalSeconds:F1} s");
            sw.Restart();
            using var model = LlamaModel.Load(path, g);
            var tokenizer = GgufTokenizer.Create(model.File.Metadata);
            using var scheduler = new GenerationScheduler(model, tokenizer, settings.SchedulerOptions(prompt.Length));
            r.Line($"   loaded in {sw.Elapsed.TotalSeconds:F1} s; scheduler: {scheduler.ContextLength} positions per stream");
            sw.Restart();
            var m = StreamsMeasurement.Measure(scheduler, prompt, settings, line => r.Line("   " + line));
            r.Line($"   measured in {sw.Elapsed.TotalSeconds:F1} s");

            string verdict = m.BatchedTextMismatches == 0 && m.SingleText.Length > 0
                ? "PASS"
                : $"FAIL ({m.BatchedTextMismatches} of {m.BatchedTexts.Count} batched streams differ from the single stream's text)";
            r.Line($"   {verdict} batched streams' greedy text equals the single stream's");
            r.Line($"   decode tok/s, 1 stream: {string.Join(" ", m.SingleRounds.Select(v => $"{v:F0}"))} (median {m.SingleTokensPerSecond:F0})");
            r.Line($"   decode tok/s, {settings.Streams} streams aggregate: {string.Join(" ", m.BatchedRounds.Select(v => $"{v:F0}"))} (median {m.BatchedTokensPerSecond:F0}, {m.MeanBatchRows:F1} rows/step)");
            r.Line($"   speedup {settings.Streams} vs 1: {m.Speedup:F2}x (issue 5 target ≥ 4x)");
            r.Line($"   TTFT ms idle: {string.Join(" ", m.TtftIdleMs.Select(v => $"{v:F1}"))} (median {m.TtftIdleMedianMs:F1}); with {settings.TtftRunning} decoding: {string.Join(" ", m.TtftLoadedMs.Select(v => $"{v:F1}"))} (median {m.TtftLoadedMedianMs:F1})");
            r.Line($"streams single={m.SingleTokensPerSecond:F1} batched={m.BatchedTokensPerSecond:F1} streams={settings.Streams} speedup={m.Speedup:F2} ttft_idle_ms={m.TtftIdleMedianMs:F1} ttft_loaded_ms={m.TtftLoadedMedianMs:F1} running={settings.TtftRunning}");

            string item = $"{config.Name} (GenerationScheduler, Q8_0)";
            r.Row("streams", item + ": 1 stream", $"{m.SingleTokensPerSecond:F0} tok/s", "", verdict);
            r.Row("streams", item + $": {settings.Streams} streams", $"{m.BatchedTokensPerSecond:F0} tok/s ({m.Speedup:F2}x)");
            r.Row("streams", $"TTFT idle / {settings.TtftRunning} running", $"{m.TtftIdleMedianMs:F1} / {m.TtftLoadedMedianMs:F1} ms");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
