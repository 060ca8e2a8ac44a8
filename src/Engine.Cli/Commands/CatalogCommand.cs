using System.CommandLine;
using System.Diagnostics;
using Engine.Runtime.Ranking;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine catalog synth --count N --out F [--seed S]</c>: writes a seeded demo catalog (see <see cref="DemoCatalog"/>)
/// as a catalog file (JSON lines, src/Engine.Runtime/Ranking/README.md) that <c>engine rank</c> and <c>engine serve</c> read.
/// </summary>
internal static class CatalogCommand
{
    public static Command Create()
    {
        var count = new Option<int>("--count", "-n") { Description = "Number of products", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Catalog file to write (JSON lines; overwritten)", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed (same seed and count, same catalog)", DefaultValueFactory = _ => 42 };
        var synth = new Command("synth", "Write a seeded demo catalog of realistic products (categories, attributes, prices, stock, margin, text).");
        synth.Options.Add(count);
        synth.Options.Add(output);
        synth.Options.Add(seed);
        synth.SetAction(parse => CliErrors.Run(() => Synth(parse.GetValue(count), parse.GetValue(output)!, parse.GetValue(seed))));

        var command = new Command("catalog", "Product catalogs for ranking: synthesize a demo catalog.");
        command.Subcommands.Add(synth);
        return command;
    }

    /// <summary>Largest demo catalog (10M products is about 4 GB of JSON; more is surely a typo).</summary>
    private const int MaxCount = 10_000_000;

    private static int Synth(int count, string outPath, int seed)
    {
        if (count is < 1 or > MaxCount) throw new UserInputException($"--count {count}: must be between 1 and {MaxCount}");
        string? folder = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (folder is not null && !Directory.Exists(folder)) throw new UserInputException($"--out {outPath}: folder {folder} does not exist");
        var clock = Stopwatch.StartNew();
        var products = DemoCatalog.Generate(count, seed);
        WithProgress($"writing {Path.GetFileName(outPath)}", count, progress => { CatalogFile.Write(outPath, products, progress); return 0; });
        clock.Stop();

        long bytes = new FileInfo(outPath).Length;
        Console.Out.WriteLine($"{outPath}: {count} products, seed {seed}, {QuantizeCommand.FormatBytes(bytes)} in {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var group in products.GroupBy(p => p.Category).OrderByDescending(g => g.Count()))
            Console.Out.WriteLine($"  {group.Key,-24} {group.Count(),8}  median price {Median(group.Select(p => p.Price)),8:F2}  out of stock {group.Count(p => !p.InStock),6}");
        return ExitCodes.Ok;
    }

    private static float Median(IEnumerable<float> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }

    /// <summary>Work bigger than this shows a progress bar (smaller finishes before a bar would draw).</summary>
    private const long ProgressThreshold = 20_000;

    /// <summary>
    /// Runs <paramref name="work"/> with a Spectre progress bar on stderr when <paramref name="size"/> is large and stderr
    /// is an interactive terminal; otherwise plainly (so redirected stderr holds only diagnostics).
    /// </summary>
    internal static T WithProgress<T>(string title, long size, Func<IProgress<WorkProgress>?, T> work)
    {
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (size < ProgressThreshold || Console.IsErrorRedirected || !err.Profile.Capabilities.Interactive) return work(null);
        return err.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), autoStart: true, maxValue: Math.Max(1, size));
                var result = work(new Progress(task));
                task.Value = task.MaxValue;
                return result;
            });
    }

    private sealed class Progress(ProgressTask task) : IProgress<WorkProgress>
    {
        public void Report(WorkProgress value)
        {
            task.MaxValue = Math.Max(1, value.Total);
            task.Value = value.Done;
        }
    }
}
