using System.CommandLine;
using System.Globalization;
using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Kernels;
using Engine.Runtime.Generation;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
using Engine.Runtime.Tokenization;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine generate</c>: loads a llama-family GGUF, tokenizes the prompt, and streams the completion
/// to stdout as it is generated; statistics go to stderr. Flags follow llama.cpp's llama-cli names.
/// </summary>
internal static class GenerateCommand
{
    /// <summary>Backends the CLI can run on (the only place that picks a concrete backend).</summary>
    public static readonly string[] BackendNames = ["cpu", "reference", "ilgpu", "ilgpu-cpu"];

    public static Command Create()
    {
        var defaults = new SamplingOptions();
        var model = new Option<FileInfo>("--model", "-m") { Description = "GGUF model file (llama family: llama, qwen2)", Required = true };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Prompt text (BOS added as the model's tokenizer asks)" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as token ids, space- or comma-separated, used as given (instead of --prompt)" };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate; -1 until the context is full", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "--temp") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => defaults.Temperature };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Random seed (default: a random one, printed on stderr)" };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 disables", DefaultValueFactory = _ => defaults.TopK };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold; 1 disables", DefaultValueFactory = _ => defaults.TopP };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens below this fraction of the best probability; 0 disables", DefaultValueFactory = _ => defaults.MinP };
        var repeatPenalty = new Option<float>("--repeat-penalty") { Description = "Repetition penalty over the last --repeat-last-n tokens; 1 disables", DefaultValueFactory = _ => defaults.RepeatPenalty };
        var repeatLastN = new Option<int>("--repeat-last-n") { Description = "Window of the repetition penalty; -1 the whole context", DefaultValueFactory = _ => defaults.RepeatLastN };
        var stop = new Option<string[]>("--stop") { Description = "Stop when the text contains this (repeatable)", DefaultValueFactory = _ => [] };
        var logitBias = new Option<string[]>("--logit-bias", "-l") { Description = "Bias a token's logit, as llama.cpp: ID+BIAS or ID-BIAS (ID-inf bans it); repeatable", DefaultValueFactory = _ => [] };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "Keep generating past end-of-generation tokens" };
        var ctxSize = new Option<int>("--ctx-size", "-c") { Description = "KV cache positions (default: the model's context_length; larger is allowed with a warning)" };
        var batchSize = new Option<int>("--batch-size", "-b") { Description = "Most prompt tokens per forward step", DefaultValueFactory = _ => LlamaDecoderOptions.DefaultMaxBatch };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads (cpu backend)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var backend = new Option<string>("--backend") { Description = "Compute backend: cpu, reference (scalar, slow), ilgpu (CUDA GPU; falls back to cpu) or ilgpu-cpu (ILGPU CPU accelerator, for testing)", DefaultValueFactory = _ => "cpu" };
        backend.AcceptOnlyFromAmong(BackendNames);
        var printIds = new Option<bool>("--print-token-ids") { Description = "Print the generated token ids, space-separated on one line, instead of the text" };

        var command = new Command("generate", "Generate text with a llama-family GGUF model");
        foreach (var o in new Option[] { model, prompt, promptIds, maxTokens, temperature, seed, topK, topP, minP, repeatPenalty, repeatLastN, logitBias, stop, ignoreEos, ctxSize, batchSize, threads, backend, printIds })
            command.Options.Add(o);

        command.SetAction(r => CliErrors.Run(() =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = r.GetValue(temperature),
                TopK = r.GetValue(topK),
                TopP = r.GetValue(topP),
                MinP = r.GetValue(minP),
                RepeatPenalty = r.GetValue(repeatPenalty),
                RepeatLastN = r.GetValue(repeatLastN),
                Seed = r.GetValue(seed),
                LogitBias = ParseLogitBias(r.GetValue(logitBias) ?? []),
            };
            var options = new GenerationOptions
            {
                MaxTokens = r.GetValue(maxTokens),
                Sampling = sampling,
                StopSequences = r.GetValue(stop) ?? [],
                StopAtEndOfGeneration = !r.GetValue(ignoreEos),
            };
            return Run(new Request(
                r.GetValue(model)!.FullName, r.GetValue(prompt), r.GetValue(promptIds), options,
                r.GetValue(ctxSize), r.GetValue(batchSize), r.GetValue(threads), r.GetValue(backend)!, r.GetValue(printIds)));
        }));
        return command;
    }

    private sealed record Request(
        string ModelPath, string? Prompt, string? PromptIds, GenerationOptions Options,
        int CtxSize, int BatchSize, int Threads, string Backend, bool PrintTokenIds);

    /// <summary>Creates the named backend (the CLI is the composition root: Runtime never picks one).</summary>
    internal static IComputeBackend CreateBackend(string name, int threads)
    {
        if (threads < 1) throw new UserInputException($"--threads must be at least 1, not {threads}");
        return name switch
        {
            "reference" => new ReferenceBackend(),
            "cpu" => new CpuBackend(new CpuBackendOptions { Threads = threads }),
            "ilgpu" => CreateCuda(threads),
            "ilgpu-cpu" => IlgpuBackend.CreateCpu(),
            _ => throw new UserInputException($"unknown backend '{name}' (expected one of: {string.Join(", ", BackendNames)})"),
        };
    }

    /// <summary>The CUDA backend, or (one stderr line saying why) the cpu backend when CUDA is not usable.</summary>
    private static IComputeBackend CreateCuda(int threads)
    {
        if (IlgpuBackend.TryCreateCuda(out var gpu, out var reason)) return gpu;
        Console.Error.WriteLine($"ilgpu: CUDA unavailable ({reason}); using the cpu backend");
        return new CpuBackend(new CpuBackendOptions { Threads = threads });
    }

    private static int Run(Request q)
    {
        if ((q.Prompt is null) == (q.PromptIds is null)) throw new UserInputException("give exactly one of --prompt and --prompt-ids");
        if (q.CtxSize < 0) throw new UserInputException($"--ctx-size must be positive, not {q.CtxSize}");
        if (q.BatchSize < 1) throw new UserInputException($"--batch-size must be at least 1, not {q.BatchSize}");
        try
        {
            q.Options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UserInputException(e.Message);
        }

        using var backend = CreateBackend(q.Backend, q.Threads);
        using var model = LlamaModel.Load(q.ModelPath, backend);
        int declared = model.Config.ContextLength;
        int ctx = q.CtxSize == 0 ? declared : q.CtxSize;
        if (ctx > declared)
            Console.Error.WriteLine($"warning: --ctx-size {ctx} exceeds the context length the model declares ({declared}); quality past it is not guaranteed");

        // Ids in, ids out needs no tokenizer; otherwise it comes from the file's tokenizer.ggml.* metadata.
        bool textOut = !q.PrintTokenIds;
        bool needTokenizer = q.Prompt is not null || textOut || q.Options.StopSequences.Count > 0;
        var tokenizer = needTokenizer ? GgufTokenizer.Create(model.File.Metadata) : null;
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = ctx, MaxBatch = q.BatchSize });
        var generator = new Generator(decoder, tokenizer);
        int[] ids = q.PromptIds is not null ? ParseIds(q.PromptIds, model.Config.VocabSize) : generator.Tokenize(q.Prompt!);
        if (ids.Length == 0) throw new UserInputException("the prompt is empty and the model adds no BOS token");
        var stdout = Console.Out;
        GenerationResult result;
        try
        {
            result = generator.Generate(ids, q.Options, textOut ? t => stdout.Write(t.Text) : null);
        }
        catch (PromptTooLongException e)
        {
            throw new UserInputException(e.Message);
        }
        catch (ArgumentException e) when (e.ParamName is null)
        {
            // Options the model rejects (a logit bias outside its vocabulary); parameter-named ones are bugs.
            throw new UserInputException(e.Message);
        }

        if (!textOut)
            stdout.WriteLine(string.Join(' ', result.TokenIds));
        else
            stdout.WriteLine();
        stdout.Flush();

        var inv = CultureInfo.InvariantCulture;
        Console.Error.WriteLine(string.Create(inv,
            $"prompt: {result.PromptIds.Length} tokens in {result.PrefillTime.TotalMilliseconds:F1} ms ({result.PrefillTokensPerSecond:F1} tokens/s)"));
        Console.Error.WriteLine(string.Create(inv,
            $"decode: {result.TokenIds.Length} tokens, {result.DecodeSteps} steps in {result.DecodeTime.TotalMilliseconds:F1} ms ({result.DecodeTokensPerSecond:F1} tokens/s)"));
        Console.Error.WriteLine(string.Create(inv,
            $"finish: {result.FinishReason}; {(q.Options.Sampling.Temperature <= 0 ? "greedy" : $"seed {result.Seed}")}; backend {backend.Name}; ctx {ctx}"));
        return ExitCodes.Ok;
    }

    /// <summary>llama.cpp's <c>--logit-bias</c> syntax: <c>TOKEN_ID(+|-)BIAS</c>, BIAS a number or <c>inf</c>.</summary>
    private static Dictionary<int, float>? ParseLogitBias(string[] specs)
    {
        if (specs.Length == 0) return null;
        var bias = new Dictionary<int, float>();
        foreach (var spec in specs)
        {
            int sign = spec.IndexOfAny(['+', '-'], 1);
            bool ok = sign > 0 && int.TryParse(spec.AsSpan(0, sign), NumberStyles.None, CultureInfo.InvariantCulture, out int id);
            float value = 0;
            if (ok)
            {
                string magnitude = spec[(sign + 1)..];
                ok = magnitude == "inf"
                    ? (value = float.PositiveInfinity) > 0
                    : float.TryParse(magnitude, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value);
                if (spec[sign] == '-') value = -value;
            }
            if (!ok) throw new UserInputException($"--logit-bias '{spec}': expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1 or 2-inf)");
            bias[int.Parse(spec.AsSpan(0, sign), CultureInfo.InvariantCulture)] = value;
        }
        return bias;
    }

    private static int[] ParseIds(string text, int vocab)
    {
        var parts = text.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UserInputException("--prompt-ids has no ids");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]) || ids[i] >= vocab)
                throw new UserInputException($"--prompt-ids: '{parts[i]}' is not a token id of this model (0..{vocab - 1})");
        }
        return ids;
    }
}
