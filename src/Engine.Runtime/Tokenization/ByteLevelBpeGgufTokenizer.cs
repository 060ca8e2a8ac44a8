using System.Text;
using Engine.Core.Gguf;
using Microsoft.ML.Tokenizers;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// <c>tokenizer.ggml.model = gpt2</c>: byte-level BPE with ranked merges (<c>tokenizer.ggml.merges</c>),
/// after a regular-expression pre-tokenizer chosen by <c>tokenizer.ggml.pre</c> (GPT-2, SmolLM,
/// StarCoder, Qwen2, …). Runs on Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> with
/// <see cref="BpeOptions.ByteLevel"/>.
/// </summary>
internal sealed class ByteLevelBpeGgufTokenizer : GgufTokenizer
{
    private readonly BpeTokenizer _inner;
    private readonly PreTokenizer _preTokenizer;
    private readonly bool _ignoreMerges;

    public ByteLevelBpeGgufTokenizer(GgufMetadata metadata)
        : this(new GgufVocabulary(metadata, GgufVocabulary.None, GgufVocabulary.None, GgufVocabulary.None), metadata,
            BpePreTokenizers.For(metadata.GetStringOrNull(GgufTokenizerKeys.Pre), metadata.File))
    {
    }

    private ByteLevelBpeGgufTokenizer(GgufVocabulary vocab, GgufMetadata metadata, BpePreTokenizers.Kind pre)
        : base(vocab, "gpt2", metadata.GetStringOrNull(GgufTokenizerKeys.Pre),
            addBos: metadata.GetBool(GgufTokenizerKeys.AddBos, pre.AddBos),
            addEos: metadata.GetBool(GgufTokenizerKeys.AddEos, false),
            addSpacePrefix: false,
            cleanSpaces: pre.CleanSpaces)
    {
        string[] merges = metadata.GetArray<string>(GgufTokenizerKeys.Merges);
        for (int i = 0; i < merges.Length; i++)
        {
            // "Ġ t": two tokens separated by one space (a byte-level token never holds a real space).
            int space = merges[i].IndexOf(' ', 1);
            if (space < 0 || space == merges[i].Length - 1)
                throw new GgufFormatException(vocab.File, GgufTokenizerKeys.Merges, $"entry {i} '{merges[i]}' is not two tokens separated by a space");
        }

        var vocabulary = new KeyValuePair<string, int>[vocab.Count];
        for (int i = 0; i < vocabulary.Length; i++) vocabulary[i] = new(vocab.Tokens[i], i);

        _preTokenizer = BpePreTokenizers.Create(pre.Patterns);
        _ignoreMerges = pre.IgnoreMerges;
        _inner = BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges,
            PreTokenizer = _preTokenizer,
            ByteLevel = true,
        });
    }

    internal override Tokenizer Inner => _inner;

    private protected override void EncodeFragment(ReadOnlySpan<char> text, List<int> output)
    {
        if (!_ignoreMerges)
        {
            output.AddRange(_inner.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true));
            return;
        }
        // ignore_merges (Llama 3): a pre-token found whole in the vocabulary is that token, even where the
        // merges would split it; others go through BPE on their own.
        foreach (var (offset, length) in _preTokenizer.PreTokenize(text))
        {
            ReadOnlySpan<char> piece = text.Slice(offset, length);
            if (TryGetTokenId(ToByteAlphabet(piece), out int id)) output.Add(id);
            else output.AddRange(_inner.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: true));
        }
    }

    // The vocabulary spelling of a text: its UTF-8 bytes written in GPT-2's byte alphabet.
    private static string ToByteAlphabet(ReadOnlySpan<char> text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text.ToArray());
        return string.Create(bytes.Length, bytes, static (dest, b) =>
        {
            for (int i = 0; i < b.Length; i++) dest[i] = ByteLevelAlphabet.CharOf(b[i]);
        });
    }

    // llama_token_to_piece for BPE: normal tokens map each character of the byte alphabet back to its
    // byte; control and user-defined tokens are their text; others print nothing. (llama.cpp writes
    // "[UNK_BYTE_0x…]" for a character outside the alphabet; its UTF-8 is kept here instead.)
    private protected override void AppendPiece(int id, string text, GgufTokenType type, List<byte> output)
    {
        switch (type)
        {
            case GgufTokenType.Normal:
                foreach (char c in text)
                {
                    int b = ByteLevelAlphabet.ByteOf(c);
                    if (b >= 0) output.Add((byte)b);
                    else output.AddRange(System.Text.Encoding.UTF8.GetBytes(c.ToString()));
                }
                break;
            case GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined:
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(text));
                break;
        }
    }
}
