using System.CommandLine;
using System.Diagnostics;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine quantize IN OUT --type q8_0</c>: rewrites a GGUF model with its matrices in Q8_0, bytes equal to
/// llama.cpp's quantizer (see <see cref="GgufQuantizer"/>). Progress on stderr, the summary on stdout.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("IN") { Description = "GGUF model to quantize (F32, F16, BF16 or Q8_0 tensors)" };
        var output = new Argument<string>("OUT") { Description = "GGUF file to write (overwritten)" };
        var type = new Option<string>("--type")
        {
            Description = "Target type: q8_0 (2-D tensors whose rows are a multiple of 32; the rest stay F32)",
            DefaultValueFactory = _ => "q8_0",
        };
        var threads = new Option<int>("--threads")
        {
            Description = "Worker threads (0: one per core)",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("quantize", "Quantize a GGUF model to Q8_0 (the same bytes llama.cpp's quantizer writes).");
        command.Arguments.Add(input);
        command.Arguments.Add(output);
        command.Options.Add(type);
        command.Options.Add(threads);
        command.SetAction(parse => CliErrors.Run(() =>
            Run(parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(type)!, parse.GetValue(threads))));
        return command;
    }

    private static int Run(string inPath, string outPath, string type, int threads)
    {
        if (!string.Equals(type, "q8_0", StringComparison.OrdinalIgnoreCase))
            throw new UserInputException($"--type {type}: only q8_0 is supported");
        if (threads < 0) throw new UserInputException($"--threads {threads}: must be 0 (one per core) or more");
        if (!File.Exists(inPath)) throw new UserInputException($"{inPath}: no such file");
        if (string.Equals(Path.GetFullPath(inPath), Path.GetFullPath(outPath), StringComparison.Ordinal))
            throw new UserInputException($"{outPath}: the output must be a different file from the input");

        var clock = Stopwatch.StartNew();
        var summary = WithProgress($"quantizing {Path.GetFileName(inPath)}",
            progress => GgufQuantizer.Quantize(inPath, outPath, GgmlType.Q8_0, progress, threads));
        clock.Stop();

        Console.Out.WriteLine($"{inPath} -> {outPath}");
        Console.Out.WriteLine($"tensors: {summary.TensorCount} ({summary.Quantized} Q8_0, {summary.KeptF32} F32)");
        Console.Out.WriteLine($"size: {FormatBytes(summary.InputBytes)} -> {FormatBytes(summary.OutputBytes)} " +
                              $"({100.0 * summary.OutputBytes / summary.InputBytes:F1}%) in {clock.Elapsed.TotalSeconds:F1} s");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Runs <paramref name="work"/> with a Spectre progress bar on stderr (one task; its description names
    /// the tensor being written). The bar is left out when stderr is not a terminal, so that stderr then
    /// holds only diagnostics (one line for a bad input).
    /// </summary>
    internal static T WithProgress<T>(string title, Func<IProgress<GgufWriteProgress>?, T> work)
    {
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected || !err.Profile.Capabilities.Interactive) return work(null);
        return err.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), autoStart: true, maxValue: 1);
                var result = work(new SpectreProgress(task, title));
                task.Value = task.MaxValue;
                task.Description = Markup.Escape(title);
                return result;
            });
    }

    /// <summary>Forwards writer progress to a Spectre task (called on the writing thread).</summary>
    private sealed class SpectreProgress(ProgressTask task, string title) : IProgress<GgufWriteProgress>
    {
        public void Report(GgufWriteProgress p)
        {
            task.MaxValue = Math.Max(1, p.BytesTotal);
            task.Value = p.BytesDone;
            task.Description = Markup.Escape($"{title} [{p.TensorIndex + 1}/{p.TensorCount}] {p.TensorName}");
        }
    }

    /// <summary>Bytes in binary units with one decimal (1.2 GiB).</summary>
    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
