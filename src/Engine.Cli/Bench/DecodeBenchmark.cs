using Engine.Core.Gguf;

namespace Engine.Cli.Bench;

/// <summary>
/// Decode speed of our engine against llama.cpp on the same file, thread count and prompt, in one
/// process: each engine loads once, runs one warm-up round, then the engines take turns for
/// <see cref="DecodeBenchSettings.Rounds"/> timed rounds each (the order flips every round so neither
/// always runs right after the other's threads went idle). The memory bandwidth is probed with the
/// same thread count, since decoding at batch 1 reads every weight once per token and is bound by it.
/// </summary>
internal static class DecodeBenchmark
{
    /// <summary>Decode steps of the warm-up round (enough for the JIT's tiering and the caches).</summary>
    private const int WarmUpTokens = 16;

    /// <summary>Seed of the fixed prompt ids, so every run and both engines see the same prompt.</summary>
    private const int PromptSeed = 20261126;

    /// <summary>Pause between rounds, so a thread pool that spins after its work (llama.cpp's OpenMP) goes idle.</summary>
    private static readonly TimeSpan SettleTime = TimeSpan.FromMilliseconds(200);

    public static DecodeBenchResult Run(DecodeBenchSettings settings, Func<DecodeBenchSettings, IDecodeRunner> createEngine, Func<DecodeBenchSettings, IDecodeRunner>? createLlamaCpp, Func<int, double> probeBandwidth, Action<string> progress)
    {
        var model = ModelFacts.Read(settings.ModelPath);
        int[] prompt = BuildPrompt(model, settings.PromptTokens);

        var runners = new List<IDecodeRunner>();
        try
        {
            progress($"loading {settings.ModelPath} in our engine");
            runners.Add(createEngine(settings));
            if (createLlamaCpp is not null)
            {
                progress("loading it in llama.cpp");
                runners.Add(createLlamaCpp(settings));
            }

            foreach (var runner in runners)
            {
                progress($"warm-up: {runner.Name}");
                runner.Run(prompt, Math.Min(WarmUpTokens, settings.Tokens));
            }

            progress($"memory bandwidth probe, {settings.Threads} thread(s)");
            double bandwidth = probeBandwidth(settings.Threads);

            var rounds = runners.ToDictionary(r => r.Name, _ => new List<DecodeRound>());
            for (int round = 0; round < settings.Rounds; round++)
            {
                var order = round % 2 == 0 ? runners : Enumerable.Reverse(runners);
                foreach (var runner in order)
                {
                    Thread.Sleep(SettleTime);
                    var result = runner.Run(prompt, settings.Tokens);
                    rounds[runner.Name].Add(result);
                    progress($"round {round + 1}/{settings.Rounds} {runner.Name}: {result.TokensPerSecond:F2} tok/s");
                }
            }

            var engines = runners.Select(r => new EngineResult(r.Name, r.Detail, rounds[r.Name])).ToList();
            return new DecodeBenchResult(settings, model, bandwidth, engines);
        }
        finally
        {
            foreach (var runner in runners) runner.Dispose();
        }
    }

    /// <summary>BOS, then ids drawn from a fixed seed among the ordinary tokens above the first few specials.</summary>
    internal static int[] BuildPrompt(ModelFacts model, int length)
    {
        var random = new Random(PromptSeed);
        int low = Math.Min(model.VocabSize - 1, 3);
        var prompt = new int[length];
        prompt[0] = model.BosToken;
        for (int i = 1; i < length; i++) prompt[i] = random.Next(low, model.VocabSize);
        return prompt;
    }
}

/// <summary>Per-engine rounds of one benchmark.</summary>
internal sealed record EngineResult(string Name, string Detail, IReadOnlyList<DecodeRound> Rounds)
{
    /// <summary>Median decode tokens/s over the rounds (robust to one disturbed round).</summary>
    public double MedianTokensPerSecond
    {
        get => Median(Rounds.Select(r => r.TokensPerSecond));
    }

    /// <summary>Best round's decode tokens/s (the least disturbed by other work on a shared machine).</summary>
    public double BestTokensPerSecond => Rounds.Max(r => r.TokensPerSecond);

    /// <summary>Median decode tokens per CPU second of the calling thread.</summary>
    public double MedianTokensPerCpuSecond => Median(Rounds.Select(r => r.TokensPerCpuSecond));

    /// <summary>Median prompt-processing tokens/s.</summary>
    public double MedianPrefillTokensPerSecond(int promptTokens) => Median(Rounds.Select(r => promptTokens / r.PrefillSeconds));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>Everything the report prints.</summary>
internal sealed record DecodeBenchResult(DecodeBenchSettings Settings, ModelFacts Model, double BandwidthBytesPerSecond, IReadOnlyList<EngineResult> Engines);

/// <summary>
/// Facts about the model file the report needs: its shape and the bytes of weights one decode step
/// reads (every tensor except the embedding table, of which one row is read, unless the output head
/// is tied to it and reads all of it).
/// </summary>
internal sealed record ModelFacts(string Architecture, int VocabSize, int BosToken, long WeightBytesPerToken, long FileBytes, string TensorTypes)
{
    /// <summary>llama.cpp's default BOS id when the file does not name one (<c>tokenizer.ggml.bos_token_id</c>).</summary>
    private const int DefaultBos = 1;

    public static ModelFacts Read(string path)
    {
        using var file = GgufFile.Open(path);
        var embedding = file.GetTensorInfo("token_embd.weight");
        bool tied = !file.HasTensor("output.weight");
        long bytes = 0;
        foreach (var tensor in file.Tensors)
            bytes += tensor.Name == "token_embd.weight" && !tied ? tensor.ByteSize / tensor.RowCount : tensor.ByteSize;
        int bos = (int)file.Metadata.GetInteger("tokenizer.ggml.bos_token_id", DefaultBos);
        string types = string.Join(", ", file.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize))
            .Select(g => $"{g.Key}×{g.Count()}"));
        return new ModelFacts(file.Architecture, (int)embedding.RowCount, bos, bytes, file.Length, types);
    }
}
