using System.CommandLine;
using Engine.Cpu.Diagnostics;

namespace Engine.Cli.Bench;

/// <summary>
/// <c>engine bench rank --items N --dims 384 --batch B --k 50 [--threads T] [--rounds R] [--recall-queries Q] [--seed S] [--rescore-factor F]</c>:
/// top-k queries/s of the product index's two-stage search (int8 scan on the SIMD CPU, then rescoring) at batch B and at batch 1,
/// and of the raw int8 scan at batch 1; recall@k of both against exact f32,
/// and, as the last stdout line, the fraction of the probed memory bandwidth reached at batch 1 (see <see cref="RankBenchmark"/>).
/// </summary>
internal static class RankBenchCommand
{
    public static Command Create()
    {
        var items = new Option<int>("--items") { Description = "Products in the index.", DefaultValueFactory = _ => 100_000 };
        var dims = new Option<int>("--dims") { Description = "Values per vector.", DefaultValueFactory = _ => 384 };
        var batch = new Option<int>("--batch") { Description = "Queries per scan.", DefaultValueFactory = _ => 1 };
        var k = new Option<int>("--k") { Description = "Results per query.", DefaultValueFactory = _ => 50 };
        var threads = new Option<int>("--threads") { Description = "Scan threads (the bandwidth probe uses as many).", DefaultValueFactory = _ => 1 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds (≥ 0.5 s each) per batch size.", DefaultValueFactory = _ => 5 };
        var recallQueries = new Option<int>("--recall-queries") { Description = "Queries checked against the exact f32 top k.", DefaultValueFactory = _ => 20 };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic catalog and queries.", DefaultValueFactory = _ => 42 };
        var rescore = new Option<int>("--rescore-factor")
        {
            Description = "The int8 scan keeps k × this many candidates, rescored with the residual layer; 0 = the raw int8 scan.",
            DefaultValueFactory = _ => Engine.Runtime.Ranking.ProductIndex.DefaultRescoreFactor,
        };

        var command = new Command("rank", "Top-k queries/s of the product index (int8 scan + rescoring), recall against exact f32, fraction of memory bandwidth.");
        foreach (var option in new Option[] { items, dims, batch, k, threads, rounds, recallQueries, seed, rescore })
            command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var settings = new RankBenchSettings(
                Positive(parse.GetValue(items), "--items"),
                Positive(parse.GetValue(dims), "--dims"),
                Positive(parse.GetValue(batch), "--batch"),
                Positive(parse.GetValue(k), "--k"),
                Positive(parse.GetValue(threads), "--threads"),
                Positive(parse.GetValue(rounds), "--rounds"),
                Positive(parse.GetValue(recallQueries), "--recall-queries"),
                parse.GetValue(seed),
                parse.GetValue(rescore) >= 0 ? parse.GetValue(rescore) : throw new UserInputException($"--rescore-factor must be at least 0, got {parse.GetValue(rescore)}"));
            if ((long)settings.Items * settings.Dims > 8L << 30)
                throw new UserInputException($"{settings.Items} × {settings.Dims} int8 values is more than this benchmark allocates (8 GiB)");
            RankBenchmark.Run(settings, t => MemoryBandwidthProbe.MeasureReadGBps(t), Console.Out, message => Console.Error.WriteLine(message));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static int Positive(int value, string name) =>
        value >= 1 ? value : throw new UserInputException($"{name} must be at least 1, got {value}");
}
