using Engine.Core.Gguf;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// The vocabulary arrays of a GGUF file (<c>tokenizer.ggml.tokens</c>, <c>scores</c>, <c>token_type</c>)
/// and its special token ids, read and checked once. Shared by every tokenizer model.
/// </summary>
internal sealed class GgufVocabulary
{
    /// <summary>"No such token" (llama.cpp's LLAMA_TOKEN_NULL).</summary>
    public const int None = -1;

    // Token texts that mark the end of a generation when the file names no id for them
    // (llama.cpp src/llama-vocab.cpp detects EOT/EOM/EOG tokens by these texts).
    private static readonly string[] EotTexts =
        ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>"];
    private const string EomText = "<|eom_id|>";

    private readonly Dictionary<string, int> _idsByText;

    public GgufVocabulary(GgufMetadata metadata, int defaultBos, int defaultEos, int defaultUnknown)
    {
        File = metadata.File;
        Tokens = metadata.GetArray<string>(GgufTokenizerKeys.Tokens);
        if (Tokens.Length == 0)
            throw new GgufFormatException(File, GgufTokenizerKeys.Tokens, "the vocabulary is empty");

        Scores = ReadScores(metadata, Tokens.Length);
        Types = ReadTypes(metadata, Tokens.Length);

        _idsByText = new Dictionary<string, int>(Tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < Tokens.Length; i++)
        {
            if (!_idsByText.TryAdd(Tokens[i], i))
                throw new GgufFormatException(File, GgufTokenizerKeys.Tokens,
                    $"duplicate token '{Tokens[i]}' at ids {_idsByText[Tokens[i]]} and {i}");
        }

        BosId = ReadId(metadata, GgufTokenizerKeys.BosId, defaultBos);
        EosId = ReadId(metadata, GgufTokenizerKeys.EosId, defaultEos);
        UnknownId = ReadId(metadata, GgufTokenizerKeys.UnknownId, defaultUnknown);
        EotId = ReadId(metadata, GgufTokenizerKeys.EotId, None);
        EomId = ReadId(metadata, GgufTokenizerKeys.EomId, None);
        if (EotId == None)
            foreach (string text in EotTexts)
                if (_idsByText.TryGetValue(text, out int id)) { EotId = id; break; }
        if (EomId == None && _idsByText.TryGetValue(EomText, out int eom)) EomId = eom;

        var eog = new SortedSet<int>();
        foreach (int id in (ReadOnlySpan<int>)[EosId, EotId, EomId])
            if (id != None) eog.Add(id);
        foreach (string text in EotTexts)
            if (_idsByText.TryGetValue(text, out int id)) eog.Add(id);
        if (_idsByText.TryGetValue(EomText, out int eomAgain)) eog.Add(eomAgain);
        EndOfGeneration = [.. eog];
    }

    public string File { get; }

    /// <summary>Token texts by id, as stored (SentencePiece uses U+2581 for a space; GPT-2 its byte alphabet).</summary>
    public string[] Tokens { get; }

    // [n_vocab] f32
    public float[] Scores { get; }

    // [n_vocab] GGUF token types
    public GgufTokenType[] Types { get; }

    public int Count => Tokens.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int UnknownId { get; }
    public int EotId { get; }
    public int EomId { get; }

    /// <summary>Ids that end a generation (eos, eot, eom and the end-of-turn tokens llama.cpp recognises by text), ascending.</summary>
    public int[] EndOfGeneration { get; }

    public bool TryGetId(string text, out int id) => _idsByText.TryGetValue(text, out id);

    /// <summary>Control, unknown and user-defined tokens, longest text first: the pieces that are cut out
    /// of the input before the model sees it (llama.cpp's <c>cache_special_tokens</c> order).</summary>
    public int[] SpecialTokensLongestFirst()
    {
        var ids = new List<int>();
        for (int i = 0; i < Types.Length; i++)
            if (Types[i] is GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined)
                ids.Add(i);
        // Stable: equal lengths keep id order.
        return [.. ids.OrderByDescending(i => Tokens[i].Length)];
    }

    private float[] ReadScores(GgufMetadata metadata, int count)
    {
        if (!metadata.TryGet(GgufTokenizerKeys.Scores, out var value))
            return new float[count]; // llama.cpp treats missing scores as 0
        float[] scores = value.Value switch
        {
            float[] f => f,
            int[] i => Array.ConvertAll(i, x => (float)x),
            _ => throw new GgufFormatException(File, GgufTokenizerKeys.Scores,
                $"expected an array of float32 (or int32), found {(value.Type == GgufValueType.Array ? $"array of {value.ElementType}" : value.Type.ToString())}"),
        };
        if (scores.Length != count)
            throw new GgufFormatException(File, GgufTokenizerKeys.Scores,
                $"has {scores.Length} entries but {GgufTokenizerKeys.Tokens} has {count}");
        return scores;
    }

    private GgufTokenType[] ReadTypes(GgufMetadata metadata, int count)
    {
        var types = new GgufTokenType[count];
        if (!metadata.Contains(GgufTokenizerKeys.TokenType))
        {
            Array.Fill(types, GgufTokenType.Normal);
            return types;
        }
        int[] raw = metadata.GetIntArray(GgufTokenizerKeys.TokenType);
        if (raw.Length != count)
            throw new GgufFormatException(File, GgufTokenizerKeys.TokenType,
                $"has {raw.Length} entries but {GgufTokenizerKeys.Tokens} has {count}");
        for (int i = 0; i < count; i++)
        {
            if ((uint)raw[i] > (uint)GgufTokenType.Byte)
                throw new GgufFormatException(File, GgufTokenizerKeys.TokenType, $"token {i} has unknown type {raw[i]}");
            types[i] = (GgufTokenType)raw[i];
        }
        return types;
    }

    // An id key that is absent keeps the model's default; one outside the vocabulary (converters write
    // 0xFFFFFFFF for "none") also keeps it, as llama.cpp does. A default outside the vocabulary is None.
    private int ReadId(GgufMetadata metadata, string key, int fallback)
    {
        long id = metadata.GetInteger(key, fallback);
        if (id >= 0 && id < Tokens.Length) return (int)id;
        return fallback >= 0 && fallback < Tokens.Length ? fallback : None;
    }
}
