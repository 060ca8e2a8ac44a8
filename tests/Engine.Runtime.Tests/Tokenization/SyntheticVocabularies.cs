using Engine.Core.Gguf;
using Engine.Runtime.Tokenization;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>Small in-memory GGUF tokenizer metadata, for tests that need no fixture files.</summary>
public static class SyntheticVocabularies
{
    public const string File = "synthetic.gguf";

    /// <summary>
    /// A llama (SentencePiece) vocabulary: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte tokens (ids 3..258), then
    /// <paramref name="pieces"/> with their scores from id 259 on.
    /// </summary>
    public static GgufMetadata Spm(params (string Piece, float Score)[] pieces)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++) { tokens.Add($"<0x{b:X2}>"); types.Add(6); }
        var scores = Enumerable.Repeat(0f, tokens.Count).ToList();
        foreach (var (piece, score) in pieces) { tokens.Add(piece); types.Add(1); scores.Add(score); }

        var m = new GgufMetadata(File);
        m.Set(GgufTokenizerKeys.Model, GgufValue.Of("llama"));
        m.Set(GgufTokenizerKeys.Tokens, GgufValue.Of(tokens.ToArray()));
        m.Set(GgufTokenizerKeys.Scores, GgufValue.Of(scores.ToArray()));
        m.Set(GgufTokenizerKeys.TokenType, GgufValue.Of(types.ToArray()));
        m.Set(GgufTokenizerKeys.BosId, GgufValue.Of(1u));
        m.Set(GgufTokenizerKeys.EosId, GgufValue.Of(2u));
        m.Set(GgufTokenizerKeys.UnknownId, GgufValue.Of(0u));
        return m;
    }

    /// <summary>Id of a piece in a vocabulary made by <see cref="Spm"/>.</summary>
    public static int SpmId(GgufTokenizer tokenizer, string piece) =>
        tokenizer.TryGetTokenId(piece, out int id) ? id : throw new KeyNotFoundException(piece);

    /// <summary>
    /// A gpt2 (byte-level BPE) vocabulary: the 256 characters of GPT-2's byte alphabet as ids 0..255 (in byte
    /// order), then the results of <paramref name="merges"/> in order, then &lt;|endoftext|&gt; as a control token.
    /// </summary>
    public static GgufMetadata Gpt2(string pre, params string[] merges) => Gpt2(pre, [], merges);

    /// <summary>As <see cref="Gpt2(string, string[])"/>, with <paramref name="extraTokens"/> (no merge makes
    /// them) after the merge results.</summary>
    public static GgufMetadata Gpt2(string pre, string[] extraTokens, params string[] merges)
    {
        var tokens = new List<string>();
        for (int b = 0; b < 256; b++) tokens.Add(ByteChar(b).ToString());
        foreach (string merge in merges) tokens.Add(merge.Replace(" ", ""));
        tokens.AddRange(extraTokens);
        tokens.Add("<|endoftext|>");
        var types = Enumerable.Repeat(1, tokens.Count).ToArray();
        types[^1] = 3;

        var m = new GgufMetadata(File);
        m.Set(GgufTokenizerKeys.Model, GgufValue.Of("gpt2"));
        m.Set(GgufTokenizerKeys.Pre, GgufValue.Of(pre));
        m.Set(GgufTokenizerKeys.Tokens, GgufValue.Of(tokens.ToArray()));
        m.Set(GgufTokenizerKeys.TokenType, GgufValue.Of(types));
        m.Set(GgufTokenizerKeys.Merges, GgufValue.Of(merges));
        m.Set(GgufTokenizerKeys.BosId, GgufValue.Of((uint)(tokens.Count - 1)));
        m.Set(GgufTokenizerKeys.EosId, GgufValue.Of((uint)(tokens.Count - 1)));
        return m;
    }

    /// <summary>GPT-2's bytes_to_unicode, written out independently of the code under test.</summary>
    public static char ByteChar(int b)
    {
        if (b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255) return (char)b;
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!(x is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255)) n++;
        return (char)(256 + n);
    }
}
