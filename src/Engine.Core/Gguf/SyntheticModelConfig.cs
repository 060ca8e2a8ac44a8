namespace Engine.Core.Gguf;

/// <summary>How <see cref="SyntheticModel"/> scales the random weights (see its remarks). Values are frozen:
/// tests pick seeds against the weights a recipe gives.</summary>
public enum SyntheticWeightRecipe
{
    /// <summary>Every projection at 1/sqrt(fan_in); the default for custom shapes.</summary>
    Basic = 0,

    /// <summary>Attention output at a quarter scale and, when tied, a small shared embedding with output_norm ~4:
    /// deep models then decode varied greedy text instead of repeating a token. The presets use it.</summary>
    TokenFocused = 1,
}

/// <summary>
/// The shape of a llama-family model for <see cref="SyntheticModel"/>: what a real file declares under
/// <c>llama.*</c>. Presets copy the configs of real models (their Hugging Face config.json).
/// </summary>
public sealed record SyntheticModelConfig
{
    /// <summary><c>general.name</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Model width (<c>llama.embedding_length</c>).</summary>
    public required int EmbeddingLength { get; init; }

    /// <summary>Layers (<c>llama.block_count</c>).</summary>
    public required int BlockCount { get; init; }

    /// <summary>Query heads (<c>llama.attention.head_count</c>).</summary>
    public required int HeadCount { get; init; }

    /// <summary>Key/value heads (<c>llama.attention.head_count_kv</c>); divides <see cref="HeadCount"/>.</summary>
    public required int HeadCountKv { get; init; }

    /// <summary>Hidden width of the SwiGLU feed-forward (<c>llama.feed_forward_length</c>).</summary>
    public required int FeedForwardLength { get; init; }

    /// <summary>Tokens in the vocabulary (at least 259 + <see cref="SyntheticModel.MinNormalTokens"/>).</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>llama.context_length</c>.</summary>
    public int ContextLength { get; init; } = 2048;

    /// <summary>True: no <c>output.weight</c>, the output head is <c>token_embd.weight</c> (SmolLM2).</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary><c>llama.rope.freq_base</c>.</summary>
    public float RopeFreqBase { get; init; } = 10000f;

    /// <summary><c>llama.attention.layer_norm_rms_epsilon</c>.</summary>
    public float RmsNormEpsilon { get; init; } = 1e-5f;

    /// <summary>How the weights are scaled (not written to the file).</summary>
    public SyntheticWeightRecipe Recipe { get; init; } = SyntheticWeightRecipe.Basic;

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => EmbeddingLength / HeadCount;

    /// <summary>Width of the key and value projections (<c>HeadCountKv * HeadDim</c>).</summary>
    public int KvDim => HeadCountKv * HeadDim;

    /// <summary>SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json): 576 wide, 30 layers, 9/3 heads, tied.</summary>
    public static SyntheticModelConfig SmolLM2_135M { get; } = new()
    {
        Name = "synthetic SmolLM2-135M shape",
        EmbeddingLength = 576, BlockCount = 30, HeadCount = 9, HeadCountKv = 3, FeedForwardLength = 1536,
        VocabSize = 49152, ContextLength = 8192, TiedEmbeddings = true, RopeFreqBase = 100000f, RmsNormEpsilon = 1e-5f,
        Recipe = SyntheticWeightRecipe.TokenFocused,
    };

    /// <summary>TinyLlama-1.1B (TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json): 2048 wide, 22 layers, 32/4 heads, separate output.</summary>
    public static SyntheticModelConfig TinyLlama_1_1B { get; } = new()
    {
        Name = "synthetic TinyLlama-1.1B shape",
        EmbeddingLength = 2048, BlockCount = 22, HeadCount = 32, HeadCountKv = 4, FeedForwardLength = 5632,
        VocabSize = 32000, ContextLength = 2048, TiedEmbeddings = false, RopeFreqBase = 10000f, RmsNormEpsilon = 1e-5f,
        Recipe = SyntheticWeightRecipe.TokenFocused,
    };

    /// <summary>A small model for tests: 64 wide, 2 layers, 4/2 heads (head dim 16), ffn 128, vocab 512, separate output.</summary>
    public static SyntheticModelConfig Tiny { get; } = new()
    {
        Name = "synthetic tiny",
        EmbeddingLength = 64, BlockCount = 2, HeadCount = 4, HeadCountKv = 2, FeedForwardLength = 128,
        VocabSize = 512, ContextLength = 512, TiedEmbeddings = false,
        Recipe = SyntheticWeightRecipe.TokenFocused,
    };

    /// <summary>Preset names accepted by <see cref="FromPreset"/>.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["smollm2-135m", "tinyllama-1.1b", "tiny"];

    /// <summary>The preset called <paramref name="name"/> (see <see cref="PresetNames"/>, case-insensitive).</summary>
    public static SyntheticModelConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "smollm2-135m" => SmolLM2_135M,
        "tinyllama-1.1b" => TinyLlama_1_1B,
        "tiny" => Tiny,
        _ => throw new ArgumentException($"unknown preset '{name}' (known: {string.Join(", ", PresetNames)})", nameof(name)),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        static void Need(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"synthetic model config: {what}");
        }
        Need(EmbeddingLength > 0 && BlockCount > 0 && HeadCount > 0 && HeadCountKv > 0 && FeedForwardLength > 0 && ContextLength > 0,
            "every size must be positive");
        Need(EmbeddingLength % HeadCount == 0, $"embedding length {EmbeddingLength} is not a multiple of the head count {HeadCount}");
        Need(HeadCount % HeadCountKv == 0, $"head count {HeadCount} is not a multiple of the KV head count {HeadCountKv}");
        Need(HeadDim % 2 == 0, $"head dim {HeadDim} is odd (RoPE rotates pairs)");
        Need(VocabSize >= SyntheticModel.ReservedTokens + SyntheticModel.MinNormalTokens,
            $"vocab size {VocabSize} is below {SyntheticModel.ReservedTokens + SyntheticModel.MinNormalTokens} (3 control + 256 byte tokens + letters)");
        Need(RopeFreqBase > 0 && RmsNormEpsilon > 0, "rope base and epsilon must be positive");
    }
}
