using System.CommandLine;
using System.Diagnostics;
using Engine.Core.Gguf;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine synth-model --preset P --seed S --type T --out F</c>: writes a seeded random-weight llama GGUF in the
/// shape of a real model (see <see cref="SyntheticModel"/>), for tests and benchmarks.
/// </summary>
internal static class SynthModelCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset")
        {
            Description = $"Model shape: {string.Join(", ", SyntheticModelConfig.PresetNames)}",
            Required = true,
        };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every weight (same seed, same file)", DefaultValueFactory = _ => 1 };
        var type = new Option<string>("--type")
        {
            Description = "Tensor type: f32, f16 or q8_0 (matrices; norms stay F32)",
            DefaultValueFactory = _ => "q8_0",
        };
        var output = new Option<string>("--out") { Description = "GGUF file to write (overwritten)", Required = true };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var command = new Command("synth-model", "Write a seeded random-weight llama GGUF model in the shape of a real one, with a valid tokenizer.");
        command.Options.Add(preset);
        command.Options.Add(seed);
        command.Options.Add(type);
        command.Options.Add(output);
        command.Options.Add(threads);
        command.SetAction(parse => CliErrors.Run(() =>
            Run(parse.GetValue(preset)!, parse.GetValue(seed), parse.GetValue(type)!, parse.GetValue(output)!, parse.GetValue(threads))));
        return command;
    }

    private static int Run(string presetName, ulong seed, string typeName, string outPath, int threads)
    {
        if (!SyntheticModelConfig.PresetNames.Contains(presetName.ToLowerInvariant()))
            throw new UserInputException($"--preset {presetName}: unknown (known: {string.Join(", ", SyntheticModelConfig.PresetNames)})");
        var type = typeName.ToLowerInvariant() switch
        {
            "f32" => GgmlType.F32,
            "f16" => GgmlType.F16,
            "q8_0" => GgmlType.Q8_0,
            _ => throw new UserInputException($"--type {typeName}: expected f32, f16 or q8_0"),
        };
        if (threads < 0) throw new UserInputException($"--threads {threads}: must be 0 (one per core) or more");
        var config = SyntheticModelConfig.FromPreset(presetName);

        var clock = Stopwatch.StartNew();
        long size = QuantizeCommand.WithProgress($"writing {Path.GetFileName(outPath)}",
            progress => SyntheticModel.Write(outPath, config, seed, type, progress, threads));
        clock.Stop();

        Console.Out.WriteLine($"{outPath}: {config.Name}, {type}, seed {seed}");
        Console.Out.WriteLine($"dim {config.EmbeddingLength}, {config.BlockCount} layers, {config.HeadCount} heads, {config.HeadCountKv} KV heads, " +
                              $"ffn {config.FeedForwardLength}, vocab {config.VocabSize}, {(config.TiedEmbeddings ? "tied" : "separate")} output");
        Console.Out.WriteLine($"size: {QuantizeCommand.FormatBytes(size)} in {clock.Elapsed.TotalSeconds:F1} s");
        return ExitCodes.Ok;
    }
}
