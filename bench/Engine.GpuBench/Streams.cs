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
/// 8 streams decoding, for both attention forms of IlgpuBackend (batched over all streams, and per segment) in one run.
/// Also a check that batching changes no text: with one prompt, every stream of a batched
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
            // Both attention forms side by side on one scheduler: batched (RoPE + store + attention of every stream in
            // three launches per layer over the pooled KV caches) and per segment (launches per stream per layer).
            bool batched = g.BatchedAttention;
            StreamsMeasurementResult? on = null, off = null;
            try
            {
                foreach (bool form in new[] { batched, !batched })
                {
                    g.BatchedAttention = form;
                    string name = form ? "batched attention" : "per-segment attention";
                    sw.Restart();
                    long launches = g.KernelLaunches;
                    var m = StreamsMeasurement.Measure(scheduler, prompt, settings, line => r.Line($"   [{name}] " + line));
                    r.Line($"   [{name}] measured in {sw.Elapsed.TotalSeconds:F1} s, {g.KernelLaunches - launches} kernel launches");
                    Print(r, settings, config.Name, name, m);
                    if (form) on = m;
                    else off = m;
                }
            }
            finally
            {
                g.BatchedAttention = batched;
            }
            // The folds (norm into the products, SwiGLU into gate/up) off for the batched steps, against the run above.
            bool norm0 = g.FusedNorm, swiGlu0 = g.FusedSwiGlu;
            try
            {
                g.FusedNorm = g.FusedSwiGlu = false;
                var m = StreamsMeasurement.Measure(scheduler, prompt, settings, line => r.Line("   [folds off] " + line));
                Print(r, settings, config.Name, "folds off", m);
                r.Line($"   {settings.Streams} streams aggregate, folds off / as above: {m.BatchedTokensPerSecond:F0} / {on!.BatchedTokensPerSecond:F0} tok/s ({m.Speedup:F2}x / {on.Speedup:F2}x one stream)");
            }
            finally
            {
                (g.FusedNorm, g.FusedSwiGlu) = (norm0, swiGlu0);
            }
            double ratio = on!.BatchedTokensPerSecond / off!.BatchedTokensPerSecond;
            r.Line($"   {settings.Streams} streams aggregate: batched attention {on.BatchedTokensPerSecond:F0} tok/s ({on.Speedup:F2}x one stream) vs per-segment {off.BatchedTokensPerSecond:F0} tok/s ({off.Speedup:F2}x): {ratio:F2}x ({IlgpuBackend.BatchedAttentionVariable}=0 selects per-segment)");
            r.Line($"streams_attention batched={on.BatchedTokensPerSecond:F1} per_segment={off.BatchedTokensPerSecond:F1} ratio={ratio:F2} streams={settings.Streams}");
        }
        finally
        {
            File.Delete(path);
        }
    }
    /// <summary>One attention form's figures: the text check, tok/s of 1 and N streams, their ratio, TTFT; a machine-readable line; report rows.</summary>
    private static void Print(Report r, StreamsMeasurementSettings settings, string model, string form, StreamsMeasurementResult m)
    {
        string verdict = m.BatchedTextMismatches == 0 && m.SingleText.Length > 0
            ? "PASS"
            : $"FAIL ({m.BatchedTextMismatches} of {m.BatchedTexts.Count} batched streams differ from the single stream's text)";
        r.Line($"   [{form}] {verdict} batched streams' greedy text equals the single stream's");
        r.Line($"   [{form}] decode tok/s, 1 stream: {string.Join(" ", m.SingleRounds.Select(v => $"{v:F0}"))} (median {m.SingleTokensPerSecond:F0})");
        r.Line($"   [{form}] decode tok/s, {settings.Streams} streams aggregate: {string.Join(" ", m.BatchedRounds.Select(v => $"{v:F0}"))} (median {m.BatchedTokensPerSecond:F0}, {m.MeanBatchRows:F1} rows/step)");
        r.Line($"   [{form}] speedup {settings.Streams} vs 1: {m.Speedup:F2}x (issue 5 target ≥ 4x)");
        r.Line($"   [{form}] TTFT ms idle: {string.Join(" ", m.TtftIdleMs.Select(v => $"{v:F1}"))} (median {m.TtftIdleMedianMs:F1}); with {settings.TtftRunning} decoding: {string.Join(" ", m.TtftLoadedMs.Select(v => $"{v:F1}"))} (median {m.TtftLoadedMedianMs:F1})");
        r.Line($"streams form={form.Split(' ')[0]} single={m.SingleTokensPerSecond:F1} batched={m.BatchedTokensPerSecond:F1} streams={settings.Streams} speedup={m.Speedup:F2} ttft_idle_ms={m.TtftIdleMedianMs:F1} ttft_loaded_ms={m.TtftLoadedMedianMs:F1} running={settings.TtftRunning}");

        string item = $"{model} (GenerationScheduler, Q8_0, {form})";
        r.Row("streams", item + ": 1 stream", $"{m.SingleTokensPerSecond:F0} tok/s", "", verdict);
        r.Row("streams", item + $": {settings.Streams} streams", $"{m.BatchedTokensPerSecond:F0} tok/s ({m.Speedup:F2}x)");
        r.Row("streams", $"TTFT idle / {settings.TtftRunning} running ({form})", $"{m.TtftIdleMedianMs:F1} / {m.TtftLoadedMedianMs:F1} ms");
    }
}
