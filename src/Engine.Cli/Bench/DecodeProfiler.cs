using System.Globalization;
using Spectre.Console;

namespace Engine.Cli.Bench;

/// <summary>
/// Where a decode step of our engine spends its time: one extra round (not one of the timed rounds)
/// with every backend op timed by <see cref="ProfilingBackend"/>, printed as µs per token for each op
/// and shape, and for matrix products the weight bytes per second they reached.
/// </summary>
internal static class DecodeProfiler
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Run(DecodeBenchSettings settings, ReadOnlySpan<int> prompt, double bandwidthBytesPerSecond, IAnsiConsole console)
    {
        ProfilingBackend? profiler = null;
        using var runner = new EngineDecodeRunner(settings.ModelPath, settings.Threads, settings.ContextSize, b => profiler = new ProfilingBackend(b));
        runner.Run(prompt, Math.Min(settings.Tokens, 16));
        runner.AfterPrefill = () => profiler!.Reset();
        var round = runner.Run(prompt, settings.Tokens);
        var stats = profiler!.Stats;

        double tokens = round.Tokens;
        double opSeconds = stats.Values.Sum(s => s.Seconds);
        var table = new Table().Title($"engine decode profile ({settings.Threads} thread(s), {round.Tokens} tokens, {round.TokensPerSecond:F1} tok/s with timing on)");
        table.AddColumn("op");
        table.AddColumn(new TableColumn("calls/token").RightAligned());
        table.AddColumn(new TableColumn("µs/token").RightAligned());
        table.AddColumn(new TableColumn("share").RightAligned());
        table.AddColumn(new TableColumn("µs/call").RightAligned());
        table.AddColumn(new TableColumn("weights GB/s").RightAligned());
        table.AddColumn(new TableColumn("of bandwidth").RightAligned());
        foreach (var (key, s) in stats.OrderByDescending(kv => kv.Value.Ticks))
        {
            double gbs = s.WeightBytes > 0 ? s.WeightBytes / s.Seconds : 0;
            table.AddRow(
                Markup.Escape(key),
                (s.Calls / tokens).ToString("F0", Inv),
                (s.Seconds * 1e6 / tokens).ToString("F1", Inv),
                (s.Seconds / opSeconds).ToString("P1", Inv),
                (s.Seconds * 1e6 / s.Calls).ToString("F2", Inv),
                s.WeightBytes > 0 ? (gbs / 1e9).ToString("F1", Inv) : "",
                s.WeightBytes > 0 ? (gbs / bandwidthBytesPerSecond).ToString("P0", Inv) : "");
        }
        console.Write(table);
        double stepMicros = round.DecodeSeconds * 1e6 / tokens;
        console.WriteLine(string.Create(Inv,
            $"step {stepMicros:F1} µs/token, of which ops {opSeconds * 1e6 / tokens:F1} µs, outside ops (decoder, arg-max, timing) {stepMicros - opSeconds * 1e6 / tokens:F1} µs"));
    }
}
