using System.CommandLine;
using Engine.Cli.Bench;
using Engine.Cpu.Diagnostics;
using LLama.Native;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine bench decode --model F [--threads T] [--tokens N] [--rounds R] [--prompt-tokens P] [--compare llama.cpp] [--llama-native auto|avx512|avx2|avx|noavx] [--profile]</c>:
/// decode tokens/s of our engine, and of llama.cpp in the same process when asked, on the same file
/// and thread count (see <see cref="DecodeBenchmark"/>). Progress goes to stderr; the table and, as the
/// last stdout line, <c>decode engine=&lt;tok/s&gt; [llama.cpp=&lt;tok/s&gt; ratio=&lt;engine/llama.cpp&gt;]</c> to stdout.
/// </summary>
internal static class BenchCommand
{
    /// <summary>The only reference engine <c>--compare</c> knows.</summary>
    private const string LlamaCpp = "llama.cpp";

    /// <summary>Columns the report table needs without wrapping.</summary>
    private const int TableWidth = 120;

    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks of the engine against reference engines.");
        command.Subcommands.Add(CreateDecode());
        command.Subcommands.Add(RankBenchCommand.Create());
        command.Subcommands.Add(CreateStreams());
        return command;
    }

    private static Command CreateStreams()
    {
        var model = new Option<string>("--model") { Description = "GGUF model file (llama family).", Required = true };
        var threads = new Option<int>("--threads") { Description = "CPU backend threads.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var streams = new Option<int>("--streams") { Description = "Concurrent streams of the batched run.", DefaultValueFactory = _ => 16 };
        var tokens = new Option<int>("--tokens") { Description = "Tokens each stream generates.", DefaultValueFactory = _ => 64 };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length of every stream and probe.", DefaultValueFactory = _ => 8 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds of each configuration, after one warm-up round.", DefaultValueFactory = _ => 3 };
        var running = new Option<int>("--ttft-running") { Description = "Streams decoding while the time-to-first-token probes arrive.", DefaultValueFactory = _ => 8 };
        var probes = new Option<int>("--ttft-probes") { Description = "Time-to-first-token probes (idle and loaded each).", DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "Also time every backend op of one extra batched round and print µs per step by op." };
        var command = new Command("streams", "Continuous batching: aggregate decode tokens/s of N concurrent streams vs 1, and time to first token with streams running.");
        foreach (var option in new Option[] { model, threads, streams, tokens, promptTokens, rounds, running, probes, profile })
            command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var settings = new StreamsBenchSettings(
                parse.GetValue(model)!,
                Positive(parse.GetValue(threads), "--threads"),
                Positive(parse.GetValue(streams), "--streams"),
                Positive(parse.GetValue(tokens), "--tokens"),
                Positive(parse.GetValue(promptTokens), "--prompt-tokens"),
                Positive(parse.GetValue(rounds), "--rounds"),
                Positive(parse.GetValue(running), "--ttft-running"),
                Positive(parse.GetValue(probes), "--ttft-probes"));
            if (!File.Exists(settings.ModelPath))
                throw new UserInputException($"{settings.ModelPath}: no such file");
            var result = StreamsBenchmark.Run(settings, message => Console.Error.WriteLine(message));
            var console = AnsiConsole.Console;
            if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, TableWidth);
            if (parse.GetValue(profile)) StreamsBenchmark.Profile(settings, settings.Streams, console);
            StreamsBenchReport.Write(result, console, Console.Out);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateDecode()
    {
        var model = new Option<string>("--model") { Description = "GGUF model file (llama family).", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads for each engine.", DefaultValueFactory = _ => 1 };
        var tokens = new Option<int>("--tokens") { Description = "Decode steps per round (prefill excluded).", DefaultValueFactory = _ => 128 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds per engine, after one warm-up round.", DefaultValueFactory = _ => 3 };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length prefilled before each round.", DefaultValueFactory = _ => 8 };
        var compare = new Option<string?>("--compare") { Description = "Also run a reference engine in the same process: llama.cpp (through LLamaSharp)." };
        compare.AcceptOnlyFromAmong(LlamaCpp);
        var llamaAvx = new Option<string>("--llama-native")
        {
            Description = "llama.cpp native build to load: auto (LLamaSharp's pick for this CPU), avx512, avx2, avx or noavx.",
            DefaultValueFactory = _ => "auto",
        };
        llamaAvx.AcceptOnlyFromAmong("auto", "avx512", "avx2", "avx", "noavx");
        var profile = new Option<bool>("--profile") { Description = "Also time every backend op of our engine in one extra round and print µs per token by op." };

        var command = new Command("decode", "Decode tokens/s at batch 1 (greedy), optionally side by side with llama.cpp.");
        foreach (var option in new Option[] { model, threads, tokens, rounds, promptTokens, compare, llamaAvx, profile })
            command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var settings = new DecodeBenchSettings(
                parse.GetValue(model)!,
                Positive(parse.GetValue(threads), "--threads"),
                Positive(parse.GetValue(tokens), "--tokens"),
                Positive(parse.GetValue(rounds), "--rounds"),
                Positive(parse.GetValue(promptTokens), "--prompt-tokens"),
                parse.GetValue(compare) == LlamaCpp);
            AvxLevel? avx = parse.GetValue(llamaAvx) switch
            {
                "avx512" => AvxLevel.Avx512,
                "avx2" => AvxLevel.Avx2,
                "avx" => AvxLevel.Avx,
                "noavx" => AvxLevel.None,
                _ => null,
            };
            if (!File.Exists(settings.ModelPath))
                throw new UserInputException($"{settings.ModelPath}: no such file");

            var result = DecodeBenchmark.Run(
                settings,
                s => new EngineDecodeRunner(s.ModelPath, s.Threads, s.ContextSize),
                settings.CompareLlamaCpp ? s => new LlamaCppDecodeRunner(s.ModelPath, s.Threads, s.ContextSize, avx) : null,
                t => MemoryBandwidthProbe.MeasureReadGBps(t) * 1e9,
                message => Console.Error.WriteLine(message));
            var console = AnsiConsole.Console;
            // Redirected output defaults to 80 columns, which wraps the table.
            if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, TableWidth);
            if (parse.GetValue(profile))
                DecodeProfiler.Run(settings, DecodeBenchmark.BuildPrompt(result.Model, settings.PromptTokens), result.BandwidthBytesPerSecond, console);
            DecodeBenchReport.Write(result, console, Console.Out);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static int Positive(int value, string name) =>
        value >= 1 ? value : throw new UserInputException($"{name} must be at least 1, got {value}");
}
