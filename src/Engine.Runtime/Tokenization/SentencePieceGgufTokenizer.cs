using System.Globalization;
using System.Text;
using Engine.Core.Gguf;
using Microsoft.ML.Tokenizers;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// <c>tokenizer.ggml.model = llama</c>: SentencePiece BPE with per-token scores and byte fallback
/// (Llama 1/2, TinyLlama, Mistral v0.1, stories260K). The GGUF vocabulary is written out as a
/// SentencePiece ModelProto and loaded by Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/>.
/// </summary>
/// <remarks>
/// <para>Normalizer settings follow llama.cpp rather than the original SentencePiece model, which GGUF does
/// not keep: no character normalization (no precompiled charsmap), runs of spaces kept
/// (remove_extra_whitespaces false), spaces escaped to U+2581, and a space put before every run of plain
/// text — at the start and after each special token — when <c>tokenizer.ggml.add_space_prefix</c>
/// (default true).</para>
/// <para>Mirroring. SentencePiece and llama.cpp merge the highest-scoring adjacent pair first and, among
/// equal scores (the same piece at several places, as in "!!!!!!" or "3333"), the leftmost. ML.Tokenizers
/// 2.0.1 takes the rightmost (its <c>SymbolPair.CompareTo</c> orders equal scores by descending left
/// index), which splits such runs differently from llama.cpp. Merging is otherwise symmetric, so the
/// model is given the mirror image: every mergeable piece is stored reversed (by Unicode scalar), each text
/// is reversed before encoding and the tokens are read back from the end. Its "rightmost first" is then
/// exactly llama.cpp's "leftmost first". Byte tokens (<c>&lt;0xXX&gt;</c>), control and unknown tokens
/// are not reversed (ML.Tokenizers finds the byte tokens by name); the UTF-8 bytes of one character keep
/// their order when the tokens are read back.</para>
/// <para>Unused tokens are given to the model as normal pieces: llama.cpp merges into them like any other.</para>
/// </remarks>
internal sealed class SentencePieceGgufTokenizer : GgufTokenizer
{
    // llama.cpp's defaults for "llama" vocabularies (src/llama-vocab.cpp): <unk>=0, <s>=1, </s>=2.
    private const int DefaultUnknownId = 0, DefaultBosId = 1, DefaultEosId = 2;
    private const char SpaceMark = '\u2581'; // ▁, SentencePiece's escaped space

    private readonly SentencePieceTokenizer _inner;

    public SentencePieceGgufTokenizer(GgufMetadata metadata)
        : this(new GgufVocabulary(metadata, DefaultBosId, DefaultEosId, DefaultUnknownId), metadata)
    {
    }

    private SentencePieceGgufTokenizer(GgufVocabulary vocab, GgufMetadata metadata)
        : base(vocab, "llama", metadata.GetStringOrNull(GgufTokenizerKeys.Pre),
            addBos: metadata.GetBool(GgufTokenizerKeys.AddBos, true),
            addEos: metadata.GetBool(GgufTokenizerKeys.AddEos, false),
            addSpacePrefix: metadata.GetBool(GgufTokenizerKeys.AddSpacePrefix, true),
            cleanSpaces: false)
    {
        bool byteFallback = HasByteTokens(vocab);

        var pieces = new string[vocab.Count];
        var types = new int[vocab.Count];
        var seen = new HashSet<string>(vocab.Count, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++)
        {
            GgufTokenType type = vocab.Types[i];
            bool mergeable = type is not (GgufTokenType.Byte or GgufTokenType.Control or GgufTokenType.Unknown);
            pieces[i] = mergeable ? Mirror(vocab.Tokens[i]) : vocab.Tokens[i];
            types[i] = type is GgufTokenType.Undefined or GgufTokenType.Unused ? (int)GgufTokenType.Normal : (int)type;
            if (!seen.Add(pieces[i]))
                throw new GgufFormatException(vocab.File, GgufTokenizerKeys.Tokens,
                    $"token {i} '{vocab.Tokens[i]}' reversed equals another token's text; this vocabulary cannot be loaded");
        }

        byte[] proto = SentencePieceModelProto.Write(pieces, vocab.Scores, types, new SentencePieceModelProto.Options(
            AddDummyPrefix: false, // added by EncodeFragment, before mirroring
            RemoveExtraWhitespaces: false,
            EscapeWhitespaces: true,
            ByteFallback: byteFallback,
            UnknownId: Math.Max(vocab.UnknownId, 0),
            BosId: vocab.BosId,
            EosId: vocab.EosId,
            UnknownPiece: vocab.UnknownId >= 0 ? vocab.Tokens[vocab.UnknownId] : "<unk>",
            BosPiece: vocab.BosId >= 0 ? vocab.Tokens[vocab.BosId] : "<s>",
            EosPiece: vocab.EosId >= 0 ? vocab.Tokens[vocab.EosId] : "</s>"));

        using var stream = new MemoryStream(proto, writable: false);
        // BOS/EOS are added by GgufTokenizer, once for the whole text (not per fragment).
        _inner = SentencePieceTokenizer.Create(stream, false, false);
    }

    internal override Tokenizer Inner => _inner;

    private protected override void EncodeFragment(ReadOnlySpan<char> text, List<int> output)
    {
        string mirrored = Mirror(text, AddSpacePrefix);
        var tokens = _inner.EncodeToTokens(mirrored, out _, considerPreTokenization: true, considerNormalization: true);
        // Read back from the end. Byte-fallback tokens of one character share its start offset and
        // stay in order.
        int end = tokens.Count;
        while (end > 0)
        {
            int start = end - 1;
            int at = tokens[start].Offset.Start.Value;
            while (start > 0 && tokens[start - 1].Offset.Start.Value == at) start--;
            for (int i = start; i < end; i++) output.Add(tokens[i].Id);
            end = start;
        }
    }

    // The text reversed by Unicode scalar values (surrogate pairs kept whole), optionally after a leading space.
    private static string Mirror(ReadOnlySpan<char> text, bool leadingSpace = false)
    {
        int length = text.Length + (leadingSpace ? 1 : 0);
        return string.Create(length, (Text: text.ToString(), leadingSpace), static (dest, state) =>
        {
            ReadOnlySpan<char> src = state.Text;
            int w = dest.Length;
            if (state.leadingSpace) dest[--w] = ' ';
            int r = 0;
            while (r < src.Length)
            {
                if (char.IsHighSurrogate(src[r]) && r + 1 < src.Length && char.IsLowSurrogate(src[r + 1]))
                {
                    w -= 2;
                    dest[w] = src[r];
                    dest[w + 1] = src[r + 1];
                    r += 2;
                }
                else
                {
                    dest[--w] = src[r++];
                }
            }
        });
    }

    private static string Mirror(string text) => Mirror(text.AsSpan());

    // Byte fallback needs <0x00>..<0xFF> as 256 consecutive BYTE tokens (ML.Tokenizers maps byte b to
    // the id of <0x00> plus b; llama.cpp looks each up by name — the same when they are consecutive).
    private static bool HasByteTokens(GgufVocabulary vocab)
    {
        if (!vocab.TryGetId("<0x00>", out int byte0)) return false;
        for (int b = 0; b < 256; b++)
        {
            int id = byte0 + b;
            if (id >= vocab.Count || vocab.Types[id] != GgufTokenType.Byte || vocab.Tokens[id] != $"<0x{b:X2}>")
                throw new GgufFormatException(vocab.File, GgufTokenizerKeys.Tokens,
                    $"byte tokens <0x00>..<0xFF> must be 256 consecutive tokens of type BYTE; <0x{b:X2}> is not at id {id}");
        }
        return true;
    }

    // llama_token_to_piece for SPM: normal tokens with U+2581 turned back into spaces, byte tokens as
    // their byte, control/unknown/user-defined tokens as their text, unused/undefined as nothing.
    private protected override void AppendPiece(int id, string text, GgufTokenType type, List<byte> output)
    {
        switch (type)
        {
            case GgufTokenType.Normal:
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(text.Replace(SpaceMark, ' ')));
                break;
            case GgufTokenType.Byte:
                output.Add(ParseByteToken(text));
                break;
            case GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined:
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(text));
                break;
        }
    }

    // "<0x0A>" → 0x0A
    private static byte ParseByteToken(string text)
    {
        if (text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
            && byte.TryParse(text.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
            return b;
        throw new FormatException($"byte token '{text}' is not of the form <0xXX>");
    }
}
