using System.Diagnostics;
using System.Globalization;
using Engine.Cpu;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Runtime.Tokenization;
using Spectre.Console;

namespace Engine.Cli.Bench;

/// <summary>What <c>engine bench streams</c> measures; see <see cref="StreamsBenchmark"/>.</summary>
/// <param name="ModelPath">GGUF file.</param>
/// <param name="Threads">CPU backend threads.</param>
/// <param name="Streams">Concurrent streams of the batched run (the figure is 16).</param>
/// <param name="Tokens">Tokens each stream generates.</param>
/// <param name="PromptTokens">Prompt length of every stream.</param>
/// <param name="Rounds">Timed rounds of each configuration; the median is reported.</param>
/// <param name="TtftRunning">Streams left decoding while the time-to-first-token probes arrive.</param>
/// <param name="TtftProbes">Probes submitted one after another against those running streams.</param>
internal sealed record StreamsBenchSettings(string ModelPath, int Threads, int Streams, int Tokens, int PromptTokens, int Rounds, int TtftRunning, int TtftProbes);

/// <summary>Figures of one <see cref="StreamsBenchmark"/> run: the settings, the backend's name and what the shared measurement found.</summary>
internal sealed record StreamsBenchResult(StreamsBenchSettings Settings, string Backend, StreamsMeasurementResult Measured)
{
    public IReadOnlyList<double> SingleRounds => Measured.SingleRounds;     // decode tok/s, 1 stream
    public IReadOnlyList<double> BatchedRounds => Measured.BatchedRounds;   // aggregate decode tok/s, Settings.Streams streams
    public double MeanBatchRows => Measured.MeanBatchRows;                  // rows per step in the batched rounds
    public IReadOnlyList<double> TtftIdleMs => Measured.TtftIdleMs;         // submit → first token, scheduler otherwise idle
    public IReadOnlyList<double> TtftLoadedMs => Measured.TtftLoadedMs;     // submit → first token, Settings.TtftRunning streams decoding
    public double SingleTokensPerSecond => Measured.SingleTokensPerSecond;
    public double BatchedTokensPerSecond => Measured.BatchedTokensPerSecond;
    public double Speedup => Measured.Speedup;

    public static double Median(IEnumerable<double> values) => StreamsMeasurementResult.Median(values);
}

/// <summary>
/// <c>engine bench streams</c> on the CPU backend: loads the model and runs <see cref="StreamsMeasurement"/>
/// (the measurement the GPU benchmark shares) through the real <see cref="GenerationScheduler"/>.
/// </summary>
internal static class StreamsBenchmark
{
    public static StreamsBenchResult Run(StreamsBenchSettings s, Action<string> progress)
    {
        var model = ModelFacts.Read(s.ModelPath);
        int[] prompt = DecodeBenchmark.BuildPrompt(model, s.PromptTokens);
        using var backend = new CpuBackend(new CpuBackendOptions { Threads = s.Threads });
        using var llama = LlamaModel.Load(s.ModelPath, backend);
        var tokenizer = GgufTokenizer.Create(llama.File.Metadata);
        var measure = Measurement(s);
        using var scheduler = new GenerationScheduler(llama, tokenizer, measure.SchedulerOptions(s.PromptTokens));
        var measured = StreamsMeasurement.Measure(scheduler, prompt, measure, progress);
        return new StreamsBenchResult(s, backend.Name, measured);
    }

    private static StreamsMeasurementSettings Measurement(StreamsBenchSettings s) => new(s.Streams, s.Tokens, s.Rounds, s.TtftRunning, s.TtftProbes);

    /// <summary>
    /// Where a batched step's time goes: one extra round of <paramref name="streams"/> streams on a
    /// <see cref="ProfilingBackend"/> (not a timed round), µs per step for each op and shape, and for the
    /// matrix products the multiply-adds per second they reached (the batched step is compute-bound once
    /// the weights are shared).
    /// </summary>
    public static void Profile(StreamsBenchSettings s, int streams, IAnsiConsole console)
    {
        var model = ModelFacts.Read(s.ModelPath);
        int[] prompt = DecodeBenchmark.BuildPrompt(model, s.PromptTokens);
        using var cpu = new CpuBackend(new CpuBackendOptions { Threads = s.Threads });
        var profiler = new ProfilingBackend(cpu);
        using var llama = LlamaModel.Load(s.ModelPath, profiler);
        var tokenizer = GgufTokenizer.Create(llama.File.Metadata);
        using var scheduler = new GenerationScheduler(llama, tokenizer, new SchedulerOptions
        {
            MaxStreams = streams,
            ContextLength = Math.Max(s.PromptTokens + s.Tokens + 2, 512),
            MaxBatchRows = Math.Max(64, streams),
        });
        StreamsMeasurement.Round(scheduler, prompt, streams, StreamsMeasurementSettings.WarmUpTokens);
        var submitted = Enumerable.Range(0, streams).Select(_ => scheduler.Submit(prompt, StreamsMeasurement.Greedy(s.Tokens))).ToList();
        StreamsMeasurement.WaitFor(() => scheduler.TokensGenerated, scheduler.TokensGenerated + streams, submitted);
        profiler.Reset();
        long steps0 = scheduler.Steps, t0 = Stopwatch.GetTimestamp();
        StreamsMeasurement.WaitFor(() => scheduler.Completed, scheduler.Completed + 1, submitted);
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        long steps = scheduler.Steps - steps0;
        foreach (var g in submitted) g.Completion.GetAwaiter().GetResult();
        var stats = profiler.Stats.ToArray();   // the loop may still add to it: copy once

        double opSeconds = stats.Sum(kv => kv.Value.Seconds);
        var table = new Table().Title(string.Create(CultureInfo.InvariantCulture,
            $"batched step profile: {streams} streams, {steps} steps, {seconds * 1e3 / steps:F2} ms/step with timing on"));
        table.AddColumn("op");
        table.AddColumn(new TableColumn("calls/step").RightAligned());
        table.AddColumn(new TableColumn("µs/step").RightAligned());
        table.AddColumn(new TableColumn("share").RightAligned());
        table.AddColumn(new TableColumn("GMAC/s").RightAligned());
        foreach (var (key, st) in stats.OrderByDescending(kv => kv.Value.Ticks).Take(16))
        {
            // Q8_0 weight bytes → multiply-adds: 34 bytes per 32 weights, each used by every row.
            double macs = st.WeightBytes / 34.0 * 32 * streams;
            table.AddRow(
                Markup.Escape(key),
                (st.Calls / (double)steps).ToString("F0", CultureInfo.InvariantCulture),
                (st.Seconds * 1e6 / steps).ToString("F1", CultureInfo.InvariantCulture),
                (st.Seconds / opSeconds).ToString("P1", CultureInfo.InvariantCulture),
                st.WeightBytes > 0 ? (macs / st.Seconds / 1e9).ToString("F1", CultureInfo.InvariantCulture) : "");
        }
        console.Write(table);
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {seconds * 1e6 / steps:F0} µs, ops {opSeconds * 1e6 / steps:F0} µs (scheduler, sampling and detokenizing the rest)"));
    }
}

/// <summary>
/// Prints a <see cref="StreamsBenchResult"/>: a table, then as the last stdout line
/// <c>streams single=&lt;tok/s&gt; batched=&lt;tok/s&gt; streams=&lt;n&gt; speedup=&lt;×&gt; ttft_idle_ms=… ttft_loaded_ms=… running=&lt;n&gt;</c>.
/// </summary>
internal static class StreamsBenchReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(StreamsBenchResult r, IAnsiConsole console, TextWriter stdout)
    {
        var s = r.Settings;
        console.WriteLine(string.Create(Inv,
            $"model {Path.GetFileName(s.ModelPath)} on {r.Backend}, {s.Threads} thread(s); prompt {s.PromptTokens} tokens, {s.Tokens} tokens per stream, {s.Rounds} rounds"));
        var table = new Table().Title("continuous batching (GenerationScheduler), greedy");
        table.AddColumn("measure");
        table.AddColumn(new TableColumn("rounds").RightAligned());
        table.AddColumn(new TableColumn("median").RightAligned());
        table.AddRow("decode tok/s, 1 stream", Join(r.SingleRounds), F(r.SingleTokensPerSecond));
        table.AddRow($"decode tok/s, {s.Streams} streams (aggregate)", Join(r.BatchedRounds), F(r.BatchedTokensPerSecond));
        table.AddRow($"speedup {s.Streams} vs 1", "", string.Create(Inv, $"{r.Speedup:F2}× (mean {r.MeanBatchRows:F1} rows/step)"));
        table.AddRow("TTFT ms, idle", Join(r.TtftIdleMs), F(StreamsBenchResult.Median(r.TtftIdleMs)));
        table.AddRow($"TTFT ms, {s.TtftRunning} streams decoding", Join(r.TtftLoadedMs), F(StreamsBenchResult.Median(r.TtftLoadedMs)));
        console.Write(table);
        stdout.WriteLine(string.Create(Inv,
            $"streams single={r.SingleTokensPerSecond:F1} batched={r.BatchedTokensPerSecond:F1} streams={s.Streams} speedup={r.Speedup:F2} ttft_idle_ms={StreamsBenchResult.Median(r.TtftIdleMs):F1} ttft_loaded_ms={StreamsBenchResult.Median(r.TtftLoadedMs):F1} running={s.TtftRunning}"));
    }

    private static string F(double v) => v.ToString("F1", Inv);
    private static string Join(IEnumerable<double> values) => string.Join(" ", values.Select(F));
}
