using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Runtime.Llama;

/// <summary>
/// Hyper-parameters of a llama-family decoder, read from GGUF metadata (keys <c>{arch}.*</c>, as
/// llama.cpp's src/llama-model.cpp reads them). Supported architectures: <c>llama</c> (RoPE on
/// adjacent pairs, llama.cpp's rope type NORM) and <c>qwen2</c> (RoPE on halves, NEOX; q/k/v bias).
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Architectures this decoder runs, with the RoPE pairing llama.cpp uses for each.</summary>
    public static IReadOnlyDictionary<string, RopeStyle> SupportedArchitectures { get; } = new Dictionary<string, RopeStyle>(StringComparer.Ordinal)
    {
        ["llama"] = RopeStyle.Normal,
        ["qwen2"] = RopeStyle.NeoX,
    };

    /// <summary>llama.cpp's default for <c>{arch}.rope.freq_base</c> when the key is absent.</summary>
    public const float DefaultRopeFreqBase = 10000f;

    /// <summary><c>general.architecture</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary><c>{arch}.context_length</c>: the context the model declares (it may run beyond it).</summary>
    public required int ContextLength { get; init; }

    /// <summary><c>{arch}.embedding_length</c>: width of the residual stream.</summary>
    public required int Dim { get; init; }

    /// <summary><c>{arch}.block_count</c>: number of transformer layers.</summary>
    public required int Layers { get; init; }

    /// <summary><c>{arch}.feed_forward_length</c>: hidden width of the SwiGLU feed-forward.</summary>
    public required int FfnDim { get; init; }

    /// <summary><c>{arch}.attention.head_count</c>.</summary>
    public required int Heads { get; init; }

    /// <summary><c>{arch}.attention.head_count_kv</c> (defaults to <see cref="Heads"/>).</summary>
    public required int KvHeads { get; init; }

    /// <summary><c>{arch}.rope.freq_base</c> (default 10000).</summary>
    public required float RopeFreqBase { get; init; }

    /// <summary><c>{arch}.attention.layer_norm_rms_epsilon</c>.</summary>
    public required float RmsEps { get; init; }

    /// <summary>Rows of <c>token_embd.weight</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Which elements RoPE pairs, decided by the architecture.</summary>
    public required RopeStyle RopeStyle { get; init; }

    /// <summary>Width of one attention head: <c>Dim / Heads</c>.</summary>
    public int HeadDim => Dim / Heads;

    /// <summary>Width of the keys (and values) of one position: <c>KvHeads * HeadDim</c>.</summary>
    public int KvDim => KvHeads * HeadDim;

    /// <summary>
    /// Reads the config of <paramref name="file"/>. A missing or mistyped key, an unsupported
    /// architecture or inconsistent sizes raise a <see cref="GgufFormatException"/> naming the key.
    /// </summary>
    public static LlamaConfig FromGguf(GgufFile file)
    {
        var meta = file.Metadata;
        string arch = meta.GetString("general.architecture");
        if (!SupportedArchitectures.TryGetValue(arch, out var ropeStyle))
            throw new GgufFormatException(file.Path, "general.architecture",
                $"unsupported architecture '{arch}' (supported: {string.Join(", ", SupportedArchitectures.Keys)})");

        int Positive(string key, long? fallback = null)
        {
            long v = fallback is { } f ? meta.GetInteger(key, f) : meta.GetInteger(key);
            if (v is <= 0 or > int.MaxValue) throw new GgufFormatException(file.Path, key, $"must be a positive 32-bit integer, found {v}");
            return (int)v;
        }

        string p = arch + ".";
        int contextLength = Positive(p + "context_length");
        int dim = Positive(p + "embedding_length");
        int layers = Positive(p + "block_count");
        int ffn = Positive(p + "feed_forward_length");
        int heads = Positive(p + "attention.head_count");
        int kvHeads = Positive(p + "attention.head_count_kv", heads);
        float freqBase = meta.GetFloat(p + "rope.freq_base", DefaultRopeFreqBase);
        float eps = meta.GetFloat(p + "attention.layer_norm_rms_epsilon");

        if (dim % heads != 0)
            throw new GgufFormatException(file.Path, p + "attention.head_count", $"{heads} heads do not divide the embedding length {dim}");
        if (heads % kvHeads != 0)
            throw new GgufFormatException(file.Path, p + "attention.head_count_kv", $"{kvHeads} KV heads do not divide the {heads} heads");
        int headDim = dim / heads;
        if (headDim % 2 != 0)
            throw new GgufFormatException(file.Path, p + "attention.head_count", $"head dimension {headDim} is odd; RoPE needs pairs");
        int ropeDims = Positive(p + "rope.dimension_count", headDim);
        if (ropeDims != headDim)
            throw new GgufFormatException(file.Path, p + "rope.dimension_count", $"partial RoPE is not supported: {ropeDims} rotated dimensions, head dimension {headDim}");
        // Features that change the math: refuse them rather than compute wrong logits silently.
        int keyLength = Positive(p + "attention.key_length", headDim);
        if (keyLength != headDim)
            throw new GgufFormatException(file.Path, p + "attention.key_length", $"key length {keyLength} differs from the head dimension {headDim}; not supported");
        int valueLength = Positive(p + "attention.value_length", headDim);
        if (valueLength != headDim)
            throw new GgufFormatException(file.Path, p + "attention.value_length", $"value length {valueLength} differs from the head dimension {headDim}; not supported");
        string scaling = meta.GetStringOrNull(p + "rope.scaling.type") ?? "none";
        float scalingFactor = meta.GetFloat(p + "rope.scaling.factor", 0f);
        if (scaling != "none" && !(scaling == "linear" && scalingFactor is 0f or 1f))
            throw new GgufFormatException(file.Path, p + "rope.scaling.type", $"RoPE scaling '{scaling}' is not supported");
        if (file.HasTensor("rope_freqs.weight"))
            throw new GgufFormatException(file.Path, "rope_freqs.weight", "RoPE frequency factors (Llama 3.1-style rope scaling) are not supported");
        if (meta.GetInteger(p + "expert_count", 0) > 0)
            throw new GgufFormatException(file.Path, p + "expert_count", "mixture-of-experts models are not supported");
        if (!(freqBase > 0) || float.IsInfinity(freqBase))
            throw new GgufFormatException(file.Path, p + "rope.freq_base", $"must be positive and finite, found {freqBase}");
        if (!(eps > 0) || float.IsInfinity(eps))
            throw new GgufFormatException(file.Path, p + "attention.layer_norm_rms_epsilon", $"must be positive and finite, found {eps}");

        var embd = file.GetTensorInfo(LlamaTensorNames.TokenEmbedding);
        if (embd.Shape.Length != 2 || embd.Shape[0] != dim || embd.Shape[1] is <= 0 or > int.MaxValue)
            throw new GgufFormatException(file.Path, LlamaTensorNames.TokenEmbedding,
                $"shape [{string.Join(", ", embd.Shape)}] does not match [{dim}, vocab] for embedding length {dim}");

        return new LlamaConfig
        {
            Architecture = arch,
            ContextLength = contextLength,
            Dim = dim,
            Layers = layers,
            FfnDim = ffn,
            Heads = heads,
            KvHeads = kvHeads,
            RopeFreqBase = freqBase,
            RmsEps = eps,
            VocabSize = (int)embd.Shape[1],
            RopeStyle = ropeStyle,
        };
    }

    public override string ToString() =>
        $"{Architecture}: dim {Dim}, {Layers} layers, {Heads} heads ({KvHeads} KV, head dim {HeadDim}), ffn {FfnDim}, vocab {VocabSize}, ctx {ContextLength}, rope base {RopeFreqBase}, eps {RmsEps}";
}
