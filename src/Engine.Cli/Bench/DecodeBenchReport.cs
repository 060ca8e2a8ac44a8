using System.Globalization;
using Spectre.Console;

namespace Engine.Cli.Bench;

/// <summary>
/// Prints a <see cref="DecodeBenchResult"/>: a table (rounds, median tokens/s, prefill speed, effective
/// bandwidth and its fraction of the measured limit), then the summary line scripts read, always last
/// on stdout: <c>decode engine=&lt;tok/s&gt; llama.cpp=&lt;tok/s&gt; ratio=&lt;engine/llama.cpp&gt;</c>.
/// </summary>
internal static class DecodeBenchReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(DecodeBenchResult result, IAnsiConsole console, TextWriter stdout)
    {
        var s = result.Settings;
        var m = result.Model;
        console.WriteLine(string.Create(Inv,
            $"model {Path.GetFileName(s.ModelPath)} ({m.Architecture}, {m.TensorTypes}), weights read per token {m.WeightBytesPerToken / 1e6:F1} MB"));
        console.WriteLine(string.Create(Inv,
            $"{s.Threads} thread(s), prompt {s.PromptTokens} tokens, {s.Tokens} decode tokens × {s.Rounds} rounds, memory bandwidth {result.BandwidthBytesPerSecond / 1e9:F1} GB/s (probe, {s.Threads} thread(s))"));

        if (LoadAverage() is { } load)
            console.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs, load average (1/5/15 min) {load} at the end");
        var table = new Table().Title("decode, batch 1, greedy");
        table.AddColumn("engine");
        table.AddColumn(new TableColumn("rounds tok/s").RightAligned());
        table.AddColumn(new TableColumn("median tok/s").RightAligned());
        table.AddColumn(new TableColumn("best tok/s").RightAligned());
        table.AddColumn(new TableColumn("ms/token").RightAligned());
        bool cpuColumn = s.Threads == 1 && ThreadCpuClock.IsSupported;
        if (cpuColumn) table.AddColumn(new TableColumn("tok per CPU-s").RightAligned());
        table.AddColumn(new TableColumn("prefill tok/s").RightAligned());
        table.AddColumn(new TableColumn("GB/s").RightAligned());
        table.AddColumn(new TableColumn("of bandwidth").RightAligned());
        foreach (var e in result.Engines)
        {
            double tps = e.MedianTokensPerSecond;
            double bytesPerSecond = tps * m.WeightBytesPerToken;
            var cells = new List<string>
            {
                Markup.Escape(e.Name),
                string.Join(" ", e.Rounds.Select(r => r.TokensPerSecond.ToString("F1", Inv))),
                tps.ToString("F2", Inv),
                e.BestTokensPerSecond.ToString("F2", Inv),
                (1000 / tps).ToString("F2", Inv),
            };
            if (cpuColumn) cells.Add(e.MedianTokensPerCpuSecond.ToString("F2", Inv));
            cells.Add(e.MedianPrefillTokensPerSecond(s.PromptTokens).ToString("F1", Inv));
            cells.Add((bytesPerSecond / 1e9).ToString("F1", Inv));
            cells.Add((bytesPerSecond / result.BandwidthBytesPerSecond).ToString("P0", Inv));
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
        foreach (var e in result.Engines)
            console.WriteLine($"{e.Name}: {e.Detail}");
        console.WriteLine(string.Create(Inv,
            $"bandwidth limit: {result.BandwidthBytesPerSecond / m.WeightBytesPerToken:F1} tok/s (probed bandwidth / weight bytes per token; GB/s = median tok/s × weight bytes per token)"));

        if (cpuColumn && result.Engines.Count > 1)
            console.WriteLine(string.Create(Inv,
                $"per CPU second of the computing thread (robust to other work on the cores): ratio {result.Engines[0].MedianTokensPerCpuSecond / result.Engines[1].MedianTokensPerCpuSecond:F3}"));

        stdout.Flush();
        stdout.WriteLine(SummaryLine(result));
        stdout.Flush();
    }

    /// <summary>The first three fields of /proc/loadavg, or null where there is none.</summary>
    private static string? LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary><c>decode engine=X llama.cpp=Y ratio=X/Y</c> (median tokens/s over the rounds), or <c>decode engine=X</c> without a comparison.</summary>
    public static string SummaryLine(DecodeBenchResult result)
    {
        double engine = result.Engines[0].MedianTokensPerSecond;
        if (result.Engines.Count == 1)
            return string.Create(Inv, $"decode engine={engine:F2}");
        double llama = result.Engines[1].MedianTokensPerSecond;
        return string.Create(Inv, $"decode engine={engine:F2} llama.cpp={llama:F2} ratio={engine / llama:F3}");
    }
}
