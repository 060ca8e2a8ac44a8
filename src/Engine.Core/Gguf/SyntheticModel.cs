using System.Runtime.InteropServices;
using Engine.Core.Quant;

namespace Engine.Core.Gguf;

/// <summary>
/// Writes seeded random-weight llama GGUF files of any <see cref="SyntheticModelConfig"/> shape, laid out
/// as llama.cpp's converter lays out a real model: the same tensor names and ggml shapes, every
/// <c>llama.*</c> key, and a valid SentencePiece ("llama") vocabulary of control, byte and normal tokens,
/// so that llama.cpp loads the file as it loads a real one.
/// </summary>
/// <remarks>
/// Weights are deterministic in (seed, tensor name, row): the same seed gives the same values whatever the
/// thread count, tensor type or tying, and the Q8_0 file is exactly <see cref="GgufQuantizer"/> applied
/// to the F32 file. Scales keep activations sane and logits well apart. With either
/// <see cref="SyntheticWeightRecipe"/>, projections have standard deviation 1/sqrt(fan_in) (unit-variance
/// outputs), norm weights are uniform in 1 ± 0.1, and logits have a standard deviation of about 4 (a peaked
/// softmax). <see cref="SyntheticWeightRecipe.Basic"/>: token embedding 0.5 (untied) or 4/sqrt(dim) (tied),
/// output head 4/sqrt(dim). <see cref="SyntheticWeightRecipe.TokenFocused"/> (the presets) changes two things
/// so that greedy decoding of deep models varies instead of repeating one token: <c>attn_output</c> at a
/// quarter of the scale (attention averages over positions, and summed over many layers that shared part
/// swamps the token-specific signal), and, when tied, a shared embedding of 1/sqrt(dim) with
/// <c>output_norm</c> 4 ± 0.4, which keeps the logit spread while making the current token's own pull
/// (its logit gets <c>|e|²</c>) small. Values are triangular (sum of two uniforms), a cheap bell shape without
/// outliers.
/// </remarks>
public static class SyntheticModel
{
    /// <summary>Tokens before the normal pieces: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; and the 256 byte tokens.</summary>
    public const int ReservedTokens = 3 + 256;

    /// <summary>The SentencePiece word-boundary mark (U+2581) that stands for a space.</summary>
    public const string SpaceMark = "\u2581";

    /// <summary>Token types of <c>tokenizer.ggml.token_type</c> (llama.cpp <c>enum llama_token_type</c>).</summary>
    public const int TokenTypeNormal = 1, TokenTypeUnknown = 2, TokenTypeControl = 3, TokenTypeByte = 6;

    /// <summary>llama.cpp's LLAMA_FTYPE values for <c>general.file_type</c>: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0.</summary>
    public const uint FileTypeAllF32 = 0, FileTypeMostlyF16 = 1;

    private const string Letters = "abcdefghijklmnopqrstuvwxyz";
    private const string Punctuation = ".,!?'\"-:;()/&%";

    /// <summary>Common words whose prefixes are all pieces, so the tokenizer can merge up to them.</summary>
    private static readonly string[] Words =
    [
        "the", "and", "to", "of", "in", "is", "was", "it", "for", "on", "with", "he", "she", "they", "you", "that",
        "this", "but", "not", "are", "his", "her", "at", "be", "had", "have", "from", "one", "all", "we", "there",
        "so", "up", "day", "big", "little", "play", "happy", "said", "time", "once", "upon", "girl", "boy", "friend",
        "new", "product", "price", "color", "size", "soft", "quality", "cotton", "shirt", "shoes", "bag", "black",
        "white", "red", "blue", "green", "light", "made", "perfect", "comfortable", "design", "style", "great",
    ];

    /// <summary>Pieces every vocabulary has: the space mark, letters, digits, punctuation.</summary>
    private static readonly string[] BasePieces = BuildBasePieces();

    /// <summary>Normal pieces every vocabulary holds (space mark, letters, digits, punctuation).</summary>
    public static int MinNormalTokens => BasePieces.Length;

    private static string[] BuildBasePieces()
    {
        var list = new List<string> { SpaceMark };
        foreach (char c in Letters) list.Add(c.ToString());
        foreach (char c in Letters) list.Add(char.ToUpperInvariant(c).ToString());
        for (char c = '0'; c <= '9'; c++) list.Add(c.ToString());
        foreach (char c in Punctuation) list.Add(c.ToString());
        return list.ToArray();
    }

    /// <summary>
    /// A llama-style SentencePiece vocabulary of <paramref name="size"/> unique tokens: <c>&lt;unk&gt;</c> (0),
    /// <c>&lt;s&gt;</c> (1), <c>&lt;/s&gt;</c> (2), <c>&lt;0x00&gt;</c>…<c>&lt;0xFF&gt;</c> (3..258), then normal pieces:
    /// the space mark, single characters, "▁"+letter, common words with every prefix (so merges reach them),
    /// then all lowercase strings of length 2, 3, … with and without the space mark, until full.
    /// Scores fall by one per normal piece (earlier pieces merge first); control and byte tokens score 0.
    /// </summary>
    public static (string[] Tokens, float[] Scores, int[] TokenTypes) BuildVocabulary(int size)
    {
        if (size < ReservedTokens + MinNormalTokens)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"a vocabulary needs at least {ReservedTokens + MinNormalTokens} tokens");
        var tokens = new List<string>(size) { "<unk>", "<s>", "</s>" };
        var types = new List<int>(size) { TokenTypeUnknown, TokenTypeControl, TokenTypeControl };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(TokenTypeByte);
        }
        var seen = new HashSet<string>(tokens, StringComparer.Ordinal);
        foreach (string piece in NormalPieces())
        {
            if (tokens.Count == size) break;
            if (!seen.Add(piece)) continue;
            tokens.Add(piece);
            types.Add(TokenTypeNormal);
        }
        var scores = new float[size];
        for (int i = ReservedTokens; i < size; i++) scores[i] = -(i - ReservedTokens);
        return (tokens.ToArray(), scores, types.ToArray());
    }

    private static IEnumerable<string> NormalPieces()
    {
        foreach (string p in BasePieces) yield return p;
        foreach (char c in Letters) yield return SpaceMark + c;
        foreach (char c in Letters) yield return SpaceMark + char.ToUpperInvariant(c);
        foreach (string w in Words)
        {
            for (int n = 2; n <= w.Length; n++) yield return w[..n];
            for (int n = 1; n <= w.Length; n++) yield return SpaceMark + w[..n];
            string cap = char.ToUpperInvariant(w[0]) + w[1..];
            for (int n = 1; n <= cap.Length; n++) yield return SpaceMark + cap[..n];
        }
        // Then every lowercase string, shortest first: inexhaustible for any vocabulary size.
        for (int len = 2; ; len++)
        {
            var chars = new char[len];
            long count = (long)Math.Pow(Letters.Length, len);
            for (long k = 0; k < count; k++)
            {
                long x = k;
                for (int j = len - 1; j >= 0; j--)
                {
                    chars[j] = Letters[(int)(x % Letters.Length)];
                    x /= Letters.Length;
                }
                var s = new string(chars);
                yield return s;
                yield return SpaceMark + s;
            }
        }
    }

    /// <summary>How a tensor's values are drawn.</summary>
    private enum Kind { Norm, OutputNorm, Embedding, Output, Projection, AttentionOutput }

    private readonly record struct Spec(string Name, long[] Shape, Kind Kind, int FanIn);

    /// <summary>Tensor names and ggml shapes (fastest-varying first) of a llama model, in llama.cpp's names.</summary>
    private static List<Spec> Layout(SyntheticModelConfig c)
    {
        int dim = c.EmbeddingLength, kv = c.KvDim, ffn = c.FeedForwardLength;
        var list = new List<Spec> { new("token_embd.weight", [dim, c.VocabSize], Kind.Embedding, dim) }; // [dim, vocab]
        for (int l = 0; l < c.BlockCount; l++)
        {
            string p = $"blk.{l}.";
            list.Add(new(p + "attn_norm.weight", [dim], Kind.Norm, dim));
            list.Add(new(p + "attn_q.weight", [dim, dim], Kind.Projection, dim));       // [dim, dim]
            list.Add(new(p + "attn_k.weight", [dim, kv], Kind.Projection, dim));        // [dim, n_kv_heads * head_dim]
            list.Add(new(p + "attn_v.weight", [dim, kv], Kind.Projection, dim));        // [dim, n_kv_heads * head_dim]
            list.Add(new(p + "attn_output.weight", [dim, dim], Kind.AttentionOutput, dim)); // [dim, dim]
            list.Add(new(p + "ffn_norm.weight", [dim], Kind.Norm, dim));
            list.Add(new(p + "ffn_gate.weight", [dim, ffn], Kind.Projection, dim));     // [dim, ffn]
            list.Add(new(p + "ffn_up.weight", [dim, ffn], Kind.Projection, dim));       // [dim, ffn]
            list.Add(new(p + "ffn_down.weight", [ffn, dim], Kind.Projection, ffn));     // [ffn, dim]
        }
        list.Add(new("output_norm.weight", [dim], Kind.OutputNorm, dim));
        if (!c.TiedEmbeddings) list.Add(new("output.weight", [dim, c.VocabSize], Kind.Output, dim)); // [dim, vocab]
        return list;
    }

    /// <summary>
    /// The type each tensor gets in a file of <paramref name="type"/>: everything F32 for F32; 2-D tensors F16
    /// and norms F32 for F16 (as llama.cpp's converter); for Q8_0 the quantizer's rule
    /// (<see cref="GgufQuantizer.TypeFor"/>: 2-D with rows a multiple of 32, token_embd included).
    /// </summary>
    public static GgmlType TensorType(ReadOnlySpan<long> shape, GgmlType type) => type switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => shape.Length == 2 ? GgmlType.F16 : GgmlType.F32,
        GgmlType.Q8_0 => GgufQuantizer.TypeFor(shape),
        _ => throw new ArgumentException($"synthetic models are written as F32, F16 or Q8_0, not {type}", nameof(type)),
    };

    /// <summary>
    /// Writes a random-weight model of shape <paramref name="config"/> to <paramref name="path"/>, streaming tensor by tensor.
    /// </summary>
    /// <param name="path">The file to create or overwrite.</param>
    /// <param name="config">The shape (see <see cref="SyntheticModelConfig"/> presets).</param>
    /// <param name="seed">Seed of every weight.</param>
    /// <param name="type">F32, F16 or Q8_0 (matrices; norms stay F32).</param>
    /// <param name="progress">Told after each slab of tensor data (on the calling thread).</param>
    /// <param name="threads">Worker threads (0: one per core).</param>
    /// <returns>The size of the file written.</returns>
    public static long Write(string path, SyntheticModelConfig config, ulong seed, GgmlType type = GgmlType.F32,
        IProgress<GgufWriteProgress>? progress = null, int threads = 0)
    {
        config.Validate();
        _ = TensorType([1, 1], type); // rejects unsupported types before creating the file
        var (tokens, scores, tokenTypes) = BuildVocabulary(config.VocabSize);
        var layout = Layout(config);

        using var w = GgufWriter.Create(path);
        var m = w.Metadata;
        m.Set("general.architecture", GgufValue.Of("llama"));
        m.Set("general.name", GgufValue.Of(config.Name));
        m.Set("llama.context_length", GgufValue.Of((uint)config.ContextLength));
        m.Set("llama.embedding_length", GgufValue.Of((uint)config.EmbeddingLength));
        m.Set("llama.block_count", GgufValue.Of((uint)config.BlockCount));
        m.Set("llama.feed_forward_length", GgufValue.Of((uint)config.FeedForwardLength));
        m.Set("llama.attention.head_count", GgufValue.Of((uint)config.HeadCount));
        m.Set("llama.attention.head_count_kv", GgufValue.Of((uint)config.HeadCountKv));
        m.Set("llama.rope.freq_base", GgufValue.Of(config.RopeFreqBase));
        m.Set("llama.attention.layer_norm_rms_epsilon", GgufValue.Of(config.RmsNormEpsilon));
        m.Set("llama.rope.dimension_count", GgufValue.Of((uint)config.HeadDim));
        m.Set("llama.vocab_size", GgufValue.Of((uint)config.VocabSize));
        m.Set("general.file_type", GgufValue.Of(type switch
        {
            GgmlType.Q8_0 => GgufQuantizer.FileTypeMostlyQ8_0,
            GgmlType.F16 => FileTypeMostlyF16,
            _ => FileTypeAllF32,
        }));
        m.Set("tokenizer.ggml.model", GgufValue.Of("llama"));
        m.Set("tokenizer.ggml.tokens", GgufValue.Of(tokens));
        m.Set("tokenizer.ggml.scores", GgufValue.Of(scores));
        m.Set("tokenizer.ggml.token_type", GgufValue.Of(tokenTypes));
        m.Set("tokenizer.ggml.bos_token_id", GgufValue.Of(1u));
        m.Set("tokenizer.ggml.eos_token_id", GgufValue.Of(2u));
        m.Set("tokenizer.ggml.unknown_token_id", GgufValue.Of(0u));
        m.Set("tokenizer.ggml.add_bos_token", GgufValue.Of(true));
        m.Set("tokenizer.ggml.add_eos_token", GgufValue.Of(false));
        if (type == GgmlType.Q8_0) m.Set("general.quantization_version", GgufValue.Of(GgufQuantizer.QuantizationVersion));
        m.Set("general.alignment", GgufValue.Of((uint)GgufFile.DefaultAlignment));

        foreach (var s in layout) w.AddTensor(s.Name, TensorType(s.Shape, type), s.Shape);
        w.WriteHeader();

        long total = w.Tensors.Sum(t => t.ByteSize), done = 0;
        byte[]? buffer = null;
        for (int i = 0; i < layout.Count; i++)
        {
            var spec = layout[i];
            var info = w.Tensors[i];
            progress?.Report(new(i, layout.Count, info.Name, done, total));
            ulong tensorSeed = Mix(Mix(seed) ^ NameHash(spec.Name));
            float sigma = Sigma(spec, config);
            float center = Center(spec, config);
            int index = i;
            RowParallel.Write(w, info, threads, ref buffer,
                (first, count, dst) => FillRows(center, sigma, tensorSeed, info.Type, (int)info.RowLength, first, count, dst),
                bytes =>
                {
                    done += bytes;
                    progress?.Report(new(index, layout.Count, info.Name, done, total));
                });
        }
        w.Finish();
        return w.BytesWritten;
    }

    /// <summary>Logit standard deviation aimed at: a peaked softmax whose greedy choice is rarely near a tie.</summary>
    private const float LogitScale = 4f;

    /// <summary>Scale of <c>attn_output</c> relative to 1/sqrt(fan_in) in the TokenFocused recipe.</summary>
    private const float AttentionOutputScale = 0.25f;

    /// <summary>Spread of a tensor's values: the standard deviation, or for norms the half-width of the uniform spread.</summary>
    private static float Sigma(Spec s, SyntheticModelConfig c) => s.Kind switch
    {
        Kind.Norm or Kind.OutputNorm => 0.1f * Center(s, c),
        // Basic: logits = normed hidden (rms ~1) · head row, standard deviation ~LogitScale, tied or not.
        // TokenFocused, tied: e·e stays small next to the layers' share of the residual; output_norm restores the logit scale.
        Kind.Embedding => !c.TiedEmbeddings ? 0.5f
            : c.Recipe == SyntheticWeightRecipe.TokenFocused ? 1f / MathF.Sqrt(c.EmbeddingLength)
            : LogitScale / MathF.Sqrt(c.EmbeddingLength),
        Kind.Output => LogitScale / MathF.Sqrt(c.EmbeddingLength),
        // TokenFocused: a quarter keeps attention's effect on the logits clearly visible without swamping the token.
        Kind.AttentionOutput => (c.Recipe == SyntheticWeightRecipe.TokenFocused ? AttentionOutputScale : 1f) / MathF.Sqrt(s.FanIn),
        _ => 1f / MathF.Sqrt(s.FanIn),
    };

    /// <summary>Mean of a tensor's values: 1 for norms (LogitScale for a tied model's output norm), 0 otherwise.</summary>
    private static float Center(Spec s, SyntheticModelConfig c) => s.Kind switch
    {
        Kind.Norm => 1f,
        Kind.OutputNorm => c.TiedEmbeddings && c.Recipe == SyntheticWeightRecipe.TokenFocused ? LogitScale : 1f,
        _ => 0f,
    };

    private static void FillRows(float center, float sigma, ulong tensorSeed, GgmlType type, int cols, long first, int count, Span<byte> dst)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        float[]? rented = null;
        Span<float> row = cols <= 4096 ? stackalloc float[cols] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(cols)).AsSpan(0, cols);
        try
        {
            for (int r = 0; r < count; r++)
            {
                GenerateRow(center, sigma, Mix(tensorSeed ^ (ulong)(first + r) * 0xD1B54A32D192ED03UL), row);
                var outRow = dst.Slice((int)(r * rowBytes), (int)rowBytes);
                switch (type)
                {
                    case GgmlType.F32: row.CopyTo(MemoryMarshal.Cast<byte, float>(outRow)); break;
                    case GgmlType.F16:
                    {
                        var h = MemoryMarshal.Cast<byte, Half>(outRow);
                        for (int j = 0; j < cols; j++) h[j] = (Half)row[j];
                        break;
                    }
                    case GgmlType.Q8_0: Q8_0.QuantizeRow(row, outRow); break;
                    default: throw new InvalidOperationException($"unexpected type {type}");
                }
            }
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>One row of values from its own generator (SplitMix64 stream seeded per row).</summary>
    private static void GenerateRow(float center, float sigma, ulong state, Span<float> row)
    {
        // Triangular on (-1, 1) has standard deviation 1/sqrt(6), hence the scale sigma * sqrt(6).
        const float Inv32 = 1f / 4294967296f;
        if (center != 0)
        {
            float scale = sigma; // half-width of the uniform spread around the center (norm weights)
            for (int j = 0; j < row.Length; j++)
            {
                state += 0x9E3779B97F4A7C15UL;
                ulong z = Mix(state);
                row[j] = center + scale * ((uint)z * (2 * Inv32) - 1f);
            }
        }
        else
        {
            float scale = sigma * MathF.Sqrt(6f);
            for (int j = 0; j < row.Length; j++)
            {
                state += 0x9E3779B97F4A7C15UL;
                ulong z = Mix(state);
                row[j] = scale * ((uint)z * Inv32 + (uint)(z >> 32) * Inv32 - 1f);
            }
        }
    }

    /// <summary>SplitMix64's finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mix.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a of the tensor name, so values do not depend on the tensor's position in the file.</summary>
    private static ulong NameHash(string name)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in name) h = (h ^ c) * 0x100000001B3UL;
        return h;
    }
}
