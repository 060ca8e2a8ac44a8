using System.Diagnostics;
using System.Globalization;
using Engine.Runtime.Generation;
using Engine.Runtime.Sampling;

namespace Engine.Runtime.Scheduling;

/// <summary>What <see cref="StreamsMeasurement.Measure"/> runs.</summary>
/// <param name="Streams">Concurrent streams of the batched rounds (the figure is 16).</param>
/// <param name="Tokens">Tokens each stream generates.</param>
/// <param name="Rounds">Timed rounds of each configuration, after one warm-up round; the median is reported.</param>
/// <param name="TtftRunning">Streams left decoding while the time-to-first-token probes arrive.</param>
/// <param name="TtftProbes">Probes submitted one after another, idle and against those running streams.</param>
public sealed record StreamsMeasurementSettings(int Streams, int Tokens, int Rounds, int TtftRunning, int TtftProbes)
{
    /// <summary>Tokens per stream of the warm-up round (it compiles, allocates caches and grows scratch).</summary>
    public const int WarmUpTokens = 16;

    /// <summary>Streams the scheduler must hold at once: the batched rounds, or the TTFT load plus its probe.</summary>
    public int MaxStreams => Math.Max(Streams, TtftRunning + 1);

    /// <summary>
    /// Scheduler limits for the measurement with prompts of <paramref name="promptTokens"/>: room for
    /// <see cref="MaxStreams"/> streams, a context of at least 512 positions so the TTFT background streams
    /// outlive every probe, and rows for every stream's whole prompt (up to one prefill chunk) in one step, so all
    /// streams of a round take their first token together and the timed window holds decode steps only.
    /// </summary>
    public SchedulerOptions SchedulerOptions(int promptTokens)
    {
        var defaults = new SchedulerOptions();
        return defaults with
        {
            MaxStreams = MaxStreams,
            ContextLength = Math.Max(promptTokens + Tokens + 2, 512),
            MaxBatchRows = Math.Max(defaults.MaxBatchRows, MaxStreams * Math.Min(promptTokens, defaults.PrefillChunk)),
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value below 1.</summary>
    public void Validate()
    {
        foreach (var (value, name) in new[] { (Streams, "streams"), (Tokens, "tokens"), (Rounds, "rounds"), (TtftRunning, "ttft running"), (TtftProbes, "ttft probes") })
            if (value < 1) throw new ArgumentException($"{name} must be at least 1, got {value}");
    }
}

/// <summary>Figures of one <see cref="StreamsMeasurement.Measure"/> run.</summary>
/// <param name="SingleRounds">Decode tok/s of 1 stream, per round.</param>
/// <param name="BatchedRounds">Aggregate decode tok/s of <see cref="StreamsMeasurementSettings.Streams"/> streams, per round.</param>
/// <param name="MeanBatchRows">Rows per step in the batched rounds.</param>
/// <param name="TtftIdleMs">Submit → first token, scheduler otherwise idle.</param>
/// <param name="TtftLoadedMs">Submit → first token with <see cref="StreamsMeasurementSettings.TtftRunning"/> streams decoding.</param>
/// <param name="SingleText">Text of the last single-stream round.</param>
/// <param name="BatchedTexts">Texts of the streams of the last batched round (same prompt: greedy makes them equal to <paramref name="SingleText"/>).</param>
public sealed record StreamsMeasurementResult(
    IReadOnlyList<double> SingleRounds,
    IReadOnlyList<double> BatchedRounds,
    double MeanBatchRows,
    IReadOnlyList<double> TtftIdleMs,
    IReadOnlyList<double> TtftLoadedMs,
    string SingleText,
    IReadOnlyList<string> BatchedTexts)
{
    /// <summary>Median decode tok/s of one stream.</summary>
    public double SingleTokensPerSecond => Median(SingleRounds);

    /// <summary>Median aggregate decode tok/s of the batched rounds.</summary>
    public double BatchedTokensPerSecond => Median(BatchedRounds);

    /// <summary>Batched aggregate over single-stream tok/s.</summary>
    public double Speedup => BatchedTokensPerSecond / SingleTokensPerSecond;

    /// <summary>Median TTFT, idle, in ms.</summary>
    public double TtftIdleMedianMs => Median(TtftIdleMs);

    /// <summary>Median TTFT with streams running, in ms.</summary>
    public double TtftLoadedMedianMs => Median(TtftLoadedMs);

    /// <summary>How many batched streams produced a text other than the single stream's (0 when batching changes nothing).</summary>
    public int BatchedTextMismatches => BatchedTexts.Count(t => t != SingleText);

    /// <summary>The median of <paramref name="values"/> (NaN when empty).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>
/// Continuous batching measured through a real <see cref="GenerationScheduler"/> (the loop <c>engine serve</c>
/// runs), on whatever backend its model sits: steady-state decode tokens/s of one stream, then the aggregate of
/// <see cref="StreamsMeasurementSettings.Streams"/> streams submitted together, both over the window in which
/// every stream of the round is decoding (from the step that sampled the last stream's first token to the first
/// completion), so prefill and the ragged end are left out. Then time to first token: a probe prompt submitted to
/// an idle scheduler, and the same probe while <see cref="StreamsMeasurementSettings.TtftRunning"/> long streams
/// keep decoding. Greedy sampling, end of generation ignored, so every stream runs its full length.
/// Shared by <c>engine bench streams</c> (CPU backend) and the GPU benchmark (ILGPU backend).
/// </summary>
public static class StreamsMeasurement
{
    /// <summary>Polling period of the token counter (the scheduler exposes counters, not events); ~0.1 % of a timed window.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Runs the warm-up round, <see cref="StreamsMeasurementSettings.Rounds"/> pairs of (1 stream, N streams)
    /// rounds, then the TTFT probes, on <paramref name="scheduler"/> (made with
    /// <see cref="StreamsMeasurementSettings.SchedulerOptions"/> and otherwise idle) with
    /// <paramref name="prompt"/> for every stream. Progress lines go to <paramref name="progress"/>.
    /// </summary>
    public static StreamsMeasurementResult Measure(GenerationScheduler scheduler, int[] prompt, StreamsMeasurementSettings s, Action<string> progress)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(prompt);
        s.Validate();
        progress($"warm-up: {s.Streams} streams × {StreamsMeasurementSettings.WarmUpTokens} tokens");
        Round(scheduler, prompt, s.Streams, StreamsMeasurementSettings.WarmUpTokens);

        var single = new List<double>();
        var batched = new List<double>();
        long steps = 0, rows = 0;
        string singleText = "";
        IReadOnlyList<string> batchedTexts = [];
        for (int r = 0; r < s.Rounds; r++)
        {
            var one = Round(scheduler, prompt, 1, s.Tokens);
            single.Add(one.TokensPerSecond);
            singleText = one.Texts[0];
            progress(string.Create(CultureInfo.InvariantCulture, $"round {r + 1}/{s.Rounds}: 1 stream {one.TokensPerSecond:F1} tok/s"));
            var many = Round(scheduler, prompt, s.Streams, s.Tokens);
            steps += many.Steps; rows += many.Rows;
            batched.Add(many.TokensPerSecond);
            batchedTexts = many.Texts;
            progress(string.Create(CultureInfo.InvariantCulture,
                $"round {r + 1}/{s.Rounds}: {s.Streams} streams {many.TokensPerSecond:F1} tok/s aggregate ({many.TokensPerSecond / one.TokensPerSecond:F2}×)"));
        }

        progress($"time to first token: {s.TtftProbes} probes idle, then with {s.TtftRunning} streams decoding");
        var idle = new List<double>();
        for (int i = 0; i < s.TtftProbes; i++) idle.Add(Probe(scheduler, prompt));
        var loaded = new List<double>();
        using (var stop = new CancellationTokenSource())
        {
            var background = Enumerable.Range(0, s.TtftRunning)
                .Select(_ => scheduler.Submit(prompt, Greedy(scheduler.ContextLength - prompt.Length - 1), stop.Token)).ToList();
            WaitFor(() => scheduler.TokensGenerated, scheduler.TokensGenerated + 2L * s.TtftRunning, background); // all decoding
            for (int i = 0; i < s.TtftProbes; i++) loaded.Add(Probe(scheduler, prompt));
            stop.Cancel();
            foreach (var b in background)
            {
                try { b.Completion.GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { }
            }
        }
        return new StreamsMeasurementResult(single, batched, steps == 0 ? 0 : (double)rows / steps, idle, loaded, singleText, batchedTexts);
    }

    /// <summary>Greedy generation of exactly <paramref name="tokens"/> tokens (end of generation ignored).</summary>
    public static GenerationOptions Greedy(int tokens) => new()
    {
        MaxTokens = tokens,
        Sampling = SamplingOptions.Greedy,
        StopAtEndOfGeneration = false,
    };

    /// <summary>What one <see cref="Round"/> measured.</summary>
    /// <param name="TokensPerSecond">Aggregate tok/s over the window in which all streams decode.</param>
    /// <param name="Steps">Scheduler steps in that window.</param>
    /// <param name="Rows">Rows those steps ran.</param>
    /// <param name="Texts">Each stream's text, in submission order.</param>
    public readonly record struct RoundResult(double TokensPerSecond, long Steps, long Rows, IReadOnlyList<string> Texts);

    /// <summary>Submits <paramref name="streams"/> streams of <paramref name="tokens"/> tokens and times the window in which all decode.</summary>
    public static RoundResult Round(GenerationScheduler scheduler, int[] prompt, int streams, int tokens)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        long baseTokens = scheduler.TokensGenerated, baseCompleted = scheduler.Completed;
        var submitted = Enumerable.Range(0, streams).Select(_ => scheduler.Submit(prompt, Greedy(tokens))).ToList();
        // Window start: every stream has its first token (prefill done, all in the decode batch).
        var (t0, n0, s0, r0) = WaitFor(() => scheduler.TokensGenerated, baseTokens + streams, scheduler, submitted);
        // Window end: the first stream completes (after it the batch shrinks).
        var (t1, n1, s1, r1) = WaitFor(() => scheduler.Completed, baseCompleted + 1, scheduler, submitted);
        var texts = submitted.Select(g => g.Completion.GetAwaiter().GetResult().Text).ToArray();
        long produced = n1 - n0;
        return new RoundResult(produced / Stopwatch.GetElapsedTime(t0, t1).TotalSeconds, s1 - s0, r1 - r0, texts);
    }

    /// <summary>Time to first token of a one-token generation, in ms, as the scheduler measures it (submit → first sample).</summary>
    public static double Probe(GenerationScheduler scheduler, int[] prompt)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        return scheduler.Submit(prompt, Greedy(1)).Completion.GetAwaiter().GetResult().TimeToFirstToken.TotalMilliseconds;
    }

    /// <summary>
    /// Polls until <paramref name="counter"/> reaches <paramref name="target"/>; a stream of <paramref name="watched"/>
    /// that ends in error rethrows that error instead of leaving the poll waiting for a count that never comes
    /// (a failed step fails every running stream).
    /// </summary>
    public static void WaitFor(Func<long> counter, long target, IReadOnlyList<GenerationStream> watched)
    {
        ArgumentNullException.ThrowIfNull(counter);
        ArgumentNullException.ThrowIfNull(watched);
        while (counter() < target)
        {
            foreach (var g in watched)
                if (g.Completion.IsFaulted || g.Completion.IsCanceled) g.Completion.GetAwaiter().GetResult();
            Thread.Sleep(Poll);
        }
    }

    /// <summary>Polls until <paramref name="counter"/> reaches <paramref name="target"/>; returns the time and the scheduler's counters then.</summary>
    private static (long At, long Tokens, long Steps, long Rows) WaitFor(Func<long> counter, long target, GenerationScheduler scheduler,
        IReadOnlyList<GenerationStream> watched)
    {
        WaitFor(counter, target, watched);
        return (Stopwatch.GetTimestamp(), scheduler.TokensGenerated, scheduler.Steps, scheduler.Rows);
    }
}
