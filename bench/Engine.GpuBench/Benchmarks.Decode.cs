using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Kernels;
using Engine.Kernels.Testing;
using Engine.Runtime.Llama;
using static Engine.GpuBench.Timing;

namespace Engine.GpuBench;
/// <summary>The decode sections: greedy decode tok/s over synthetic and real-decoder models.</summary>
internal static partial class Benchmarks
{
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
                Folds(eager, graphs: false);
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
            Folds(replayed, graphs: true);

            // The backend's folds (RMSNorm into the next product, SwiGLU into gate/up; IlgpuBackend.Fusion.cs) off against
            // the run above (the backend's setting, on unless ENGINE_FUSED_NORM/ENGINE_FUSED_SWIGLU=0), in the same mode.
            // CHECK: the prompt's logits agree within the whole-pass tolerance (the folded kernels quantize the same values;
            // only the product variant's summation order may differ). Greedy ids are printed, not checked.
            void Folds(DecodeFigures asIs, bool graphs)
            {
                bool norm0 = g.FusedNorm, swiGlu0 = g.FusedSwiGlu;
                r.Line($"   folds as run above: {g.FusionStatus}");
                try
                {
                    g.FusedNorm = g.FusedSwiGlu = false;
                    var off = DecodeRun(g, model, s, graphs);
                    string mode = graphs ? "CUDA graphs" : "eager";
                    r.Line($"   folds off / as above ({mode}): {1 / off.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s, "
                         + $"{off.LaunchesPerToken:F0} / {asIs.LaunchesPerToken:F0} kernels/token; speed-up {off.SecondsPerToken / asIs.SecondsPerToken:F2}x");
                    r.Row("decoder", $"{config.Name} folds off / on ({mode})",
                        $"{1 / off.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s, {off.LaunchesPerToken:F0} / {asIs.LaunchesPerToken:F0} kernels/tok", "");
                    double err = HostTensors.NormalizedError(asIs.PromptLogits, off.PromptLogits);
                    string check = err <= KernelTolerances.Forward ? "PASS" : $"FAIL (normalized error {err:E2} > {KernelTolerances.Forward:E0})";
                    int same = 0;
                    while (same < off.Ids.Length && off.Ids[same] == asIs.Ids[same]) same++;
                    r.Line($"   {check} prompt logits folds on vs off (normalized error {err:E2}); greedy ids equal for the first {same} of {off.Ids.Length} steps");
                    r.Row("decoder", $"{config.Name} logits folds on == off", $"{err:E1}", "", check);

                    // Which fold pays in a whole decode step: the norm folded alone (SwiGLU its own launch), and the gate/up
                    // kernel in its other form (32-output groups vs spread), each against the run above.
                    g.FusedNorm = norm0;
                    g.FusedSwiGlu = false;
                    var normOnly = DecodeRun(g, model, s, graphs);
                    r.Line($"   norm folded, swiglu not / as above ({mode}): {1 / normOnly.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s, {normOnly.LaunchesPerToken:F0} / {asIs.LaunchesPerToken:F0} kernels/token");
                    r.Row("decoder", $"{config.Name} swiglu unfolded / as is ({mode})", $"{1 / normOnly.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s", "");
                    g.FusedNorm = false;
                    g.FusedSwiGlu = swiGlu0;
                    var swiGluOnly = DecodeRun(g, model, s, graphs);
                    r.Line($"   swiglu folded, norm not / as above ({mode}): {1 / swiGluOnly.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s, {swiGluOnly.LaunchesPerToken:F0} / {asIs.LaunchesPerToken:F0} kernels/token");
                    r.Row("decoder", $"{config.Name} norm unfolded / as is ({mode})", $"{1 / swiGluOnly.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s", "");
                    g.FusedNorm = norm0;
                    // The fold limits (FoldMaxCols, FoldNormMaxRows) against no limit at all and the norm limited by rows only.
                    int maxRows0 = g.FoldNormMaxRows, maxCols0 = g.FoldMaxCols;
                    try
                    {
                        foreach (var (maxRows, maxCols) in new[] { (int.MaxValue, int.MaxValue), (IlgpuBackend.DefaultFoldNormMaxRows, int.MaxValue) })
                        {
                            (g.FoldNormMaxRows, g.FoldMaxCols) = (maxRows, maxCols);
                            var limited = DecodeRun(g, model, s, graphs);
                            string what = maxRows == int.MaxValue ? "folds without limits" : $"norm folded into products of <= {maxRows} rows, any width";
                            r.Line($"   {what} / as above ({mode}): {1 / limited.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s, {limited.LaunchesPerToken:F0} / {asIs.LaunchesPerToken:F0} kernels/token ({IlgpuBackend.FoldNormMaxRowsVariable}, {IlgpuBackend.FoldMaxColsVariable})");
                            r.Row("decoder", $"{config.Name} {(maxRows == int.MaxValue ? "no fold limits" : $"norm fold <= {maxRows} rows")} / as is ({mode})", $"{1 / limited.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s", "");
                        }
                    }
                    finally
                    {
                        (g.FoldNormMaxRows, g.FoldMaxCols) = (maxRows0, maxCols0);
                    }
                    bool spread0 = g.GateUpSpread;
                    g.GateUpSpread = !spread0;
                    try
                    {
                        var other = DecodeRun(g, model, s, graphs);
                        r.Line($"   gate/up {(spread0 ? "32-output groups" : "spread")} / as above ({(spread0 ? "spread" : "32-output groups")}, {mode}): {1 / other.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s ({IlgpuBackend.GateUpSpreadVariable})");
                        r.Row("decoder", $"{config.Name} gate/up {(spread0 ? "32-output / spread" : "spread / 32-output")} ({mode})", $"{1 / other.SecondsPerToken:F0} / {1 / asIs.SecondsPerToken:F0} tok/s", "");
                    }
                    finally
                    {
                        g.GateUpSpread = spread0;
                    }
                }
                finally
                {
                    g.FusedNorm = norm0;
                    g.FusedSwiGlu = swiGlu0;
                }
            }

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

    private sealed record DecodeFigures(int[] Ids, double SecondsPerToken, double LaunchesPerToken, double GraphsPerToken, long GraphLaunches, bool Finite,
        float[] PromptLogits);

    /// <summary>One decoder on <paramref name="model"/>: prompt, <see cref="Sizes.GraphCheckTokens"/> greedy ids, warm-up, then timed greedy steps.</summary>
    private static DecodeFigures DecodeRun(IlgpuBackend g, LlamaModel model, Sizes s, bool graphs)
    {
        g.GraphsEnabled = graphs;
        long graphs0 = g.GraphLaunches;
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 512 });
        var prompt = new[] { 1, 400, 401, 402, 403, 404, 405, 406 };
        var logits = decoder.Forward(prompt);
        float[] promptLogits = logits.ToArray();
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
            (double)(g.GraphLaunches - timedGraphs0) / s.DecodeTokens, g.GraphLaunches - graphs0, finite, promptLogits);
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
