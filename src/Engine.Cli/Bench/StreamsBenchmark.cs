using System.Diagnostics;
using System.Globalization;
using Engine.Cpu;
using Engine.Runtime.Generation;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
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

/// <summary>Figures of one <see cref="StreamsBenchmark"/> run.</summary>
internal sealed record StreamsBenchResult(
    StreamsBenchSettings Settings,
    string Backend,
    IReadOnlyList<double> SingleRounds,      // decode tok/s, 1 stream
    IReadOnlyList<double> BatchedRounds,     // aggregate decode tok/s, Settings.Streams streams
    double MeanBatchRows,                    // rows per step in the batched rounds
    IReadOnlyList<double> TtftIdleMs,        // submit → first token, scheduler otherwise idle
    IReadOnlyList<double> TtftLoadedMs)      // submit → first token, Settings.TtftRunning streams decoding
{
    public double SingleTokensPerSecond => Median(SingleRounds);
    public double BatchedTokensPerSecond => Median(BatchedRounds);
    public double Speedup => BatchedTokensPerSecond / SingleTokensPerSecond;

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>
/// Continuous batching measured through the real <see cref="GenerationScheduler"/> (the loop
/// <c>engine serve</c> runs): steady-state decode tokens/s of one stream, then the aggregate of
/// <see cref="StreamsBenchSettings.Streams"/> streams submitted together, both over the window in
/// which every stream of the round is decoding (from the step that sampled the last stream's first
/// token to the first completion), so prefill and the ragged end are left out. Then time to first
/// token: a probe prompt submitted to an idle scheduler, and the same probe while
/// <see cref="StreamsBenchSettings.TtftRunning"/> long streams keep decoding. Greedy sampling, end of
/// generation ignored, so every stream runs its full length.
/// </summary>
internal static class StreamsBenchmark
{
    /// <summary>Polling period of the token counter (the scheduler exposes counters, not events); ~0.1 % of a timed window.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(1);

    public static StreamsBenchResult Run(StreamsBenchSettings s, Action<string> progress)
    {
        var model = ModelFacts.Read(s.ModelPath);
        int[] prompt = DecodeBenchmark.BuildPrompt(model, s.PromptTokens);
        using var backend = new CpuBackend(new CpuBackendOptions { Threads = s.Threads });
        using var llama = LlamaModel.Load(s.ModelPath, backend);
        var tokenizer = GgufTokenizer.Create(llama.File.Metadata);
        int running = Math.Max(s.Streams, s.TtftRunning + 1);
        // The TTFT background streams must outlive every probe: give them the whole context.
        int context = Math.Max(s.PromptTokens + s.Tokens + 2, 512);
        using var scheduler = new GenerationScheduler(llama, tokenizer, new SchedulerOptions
        {
            MaxStreams = running,
            ContextLength = context,
            MaxBatchRows = Math.Max(64, running),
        });

        progress($"warm-up: {s.Streams} streams × 16 tokens");
        Round(scheduler, prompt, s.Streams, 16);

        var single = new List<double>();
        var batched = new List<double>();
        long steps = 0, rows = 0;
        for (int r = 0; r < s.Rounds; r++)
        {
            double one = Round(scheduler, prompt, 1, s.Tokens).TokensPerSecond;
            single.Add(one);
            progress(string.Create(CultureInfo.InvariantCulture, $"round {r + 1}/{s.Rounds}: 1 stream {one:F1} tok/s"));
            var many = Round(scheduler, prompt, s.Streams, s.Tokens);
            steps += many.Steps; rows += many.Rows;
            batched.Add(many.TokensPerSecond);
            progress(string.Create(CultureInfo.InvariantCulture, $"round {r + 1}/{s.Rounds}: {s.Streams} streams {many.TokensPerSecond:F1} tok/s aggregate ({many.TokensPerSecond / one:F2}×)"));
        }

        progress($"time to first token: {s.TtftProbes} probes idle, then with {s.TtftRunning} streams decoding");
        var idle = new List<double>();
        for (int i = 0; i < s.TtftProbes; i++) idle.Add(Probe(scheduler, prompt));
        var loaded = new List<double>();
        using (var stop = new CancellationTokenSource())
        {
            var background = Enumerable.Range(0, s.TtftRunning)
                .Select(_ => scheduler.Submit(prompt, Options(context - s.PromptTokens - 1), stop.Token)).ToList();
            WaitFor(() => scheduler.TokensGenerated, scheduler.TokensGenerated + 2L * s.TtftRunning); // all decoding
            for (int i = 0; i < s.TtftProbes; i++) loaded.Add(Probe(scheduler, prompt));
            stop.Cancel();
            foreach (var b in background)
            {
                try { b.Completion.GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { }
            }
        }
        return new StreamsBenchResult(s, backend.Name, single, batched, steps == 0 ? 0 : (double)rows / steps, idle, loaded);
    }

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
        Round(scheduler, prompt, streams, 16);
        var submitted = Enumerable.Range(0, streams).Select(_ => scheduler.Submit(prompt, Options(s.Tokens))).ToList();
        WaitFor(() => scheduler.TokensGenerated, scheduler.TokensGenerated + streams);
        profiler.Reset();
        long steps0 = scheduler.Steps, t0 = Stopwatch.GetTimestamp();
        WaitFor(() => scheduler.Completed, scheduler.Completed + 1);
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

    private static GenerationOptions Options(int tokens) => new()
    {
        MaxTokens = tokens,
        Sampling = SamplingOptions.Greedy,
        StopAtEndOfGeneration = false,
    };

    private readonly record struct RoundResult(double TokensPerSecond, long Steps, long Rows);

    /// <summary>Submits <paramref name="streams"/> streams of <paramref name="tokens"/> tokens and times the window in which all decode.</summary>
    private static RoundResult Round(GenerationScheduler scheduler, int[] prompt, int streams, int tokens)
    {
        long baseTokens = scheduler.TokensGenerated, baseCompleted = scheduler.Completed;
        var submitted = Enumerable.Range(0, streams).Select(_ => scheduler.Submit(prompt, Options(tokens))).ToList();
        // Window start: every stream has its first token (prefill done, all in the decode batch).
        var (t0, n0, s0, r0) = WaitFor(() => scheduler.TokensGenerated, baseTokens + streams, scheduler);
        // Window end: the first stream completes (after it the batch shrinks).
        var (t1, n1, s1, r1) = WaitFor(() => scheduler.Completed, baseCompleted + 1, scheduler);
        foreach (var g in submitted) g.Completion.GetAwaiter().GetResult();
        long produced = (n1 - baseTokens) - (n0 - baseTokens);
        return new RoundResult(produced / Stopwatch.GetElapsedTime(t0, t1).TotalSeconds, s1 - s0, r1 - r0);
    }

    /// <summary>Time to first token of a one-token generation, in ms, as the scheduler measures it (submit → first sample).</summary>
    private static double Probe(GenerationScheduler scheduler, int[] prompt) =>
        scheduler.Submit(prompt, Options(1)).Completion.GetAwaiter().GetResult().TimeToFirstToken.TotalMilliseconds;

    private static void WaitFor(Func<long> counter, long target)
    {
        while (counter() < target) Thread.Sleep(Poll);
    }

    /// <summary>Polls until <paramref name="counter"/> reaches <paramref name="target"/>; returns the time and the scheduler's counters then.</summary>
    private static (long At, long Tokens, long Steps, long Rows) WaitFor(Func<long> counter, long target, GenerationScheduler scheduler)
    {
        while (counter() < target) Thread.Sleep(Poll);
        return (Stopwatch.GetTimestamp(), scheduler.TokensGenerated, scheduler.Steps, scheduler.Rows);
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
