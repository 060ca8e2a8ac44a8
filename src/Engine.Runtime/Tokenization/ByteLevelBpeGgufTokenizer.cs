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

    public ByteLevelBpeGgufTokenizer(GgufMetadata metadata)
        : this(new GgufVocabulary(metadata, GgufVocabulary.None, GgufVocabulary.None, GgufVocabulary.None), metadata,
            BpePreTokenizers.For(metadata.GetStringOrNull(GgufTokenizerKeys.Pre), metadata.File))
    {
    }

    private ByteLevelBpeGgufTokenizer(GgufVocabulary vocab, GgufMetadata metadata, (string[] Patterns, bool CleanSpaces) pre)
        : base(vocab, "gpt2", metadata.GetStringOrNull(GgufTokenizerKeys.Pre),
            addBos: metadata.GetBool(GgufTokenizerKeys.AddBos, false),
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

        _inner = BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges,
            PreTokenizer = BpePreTokenizers.Create(pre.Patterns),
            ByteLevel = true,
        });
    }

    internal override Tokenizer Inner => _inner;

    private protected override void EncodeFragment(ReadOnlySpan<char> text, List<int> output) =>
        output.AddRange(_inner.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true));

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
                    else output.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                }
                break;
            case GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined:
                output.AddRange(Encoding.UTF8.GetBytes(text));
                break;
        }
    }
}
