using System.Runtime.InteropServices;
using System.Text;
using Engine.Core.Gguf;
using Microsoft.ML.Tokenizers;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// A tokenizer built from a GGUF file's <c>tokenizer.ggml.*</c> metadata that tokenizes as llama.cpp does.
/// The subword algorithm is Microsoft.ML.Tokenizers' (SentencePiece BPE for <c>llama</c>, byte-level BPE
/// for <c>gpt2</c>); this class adds what llama.cpp does around it: cutting special tokens out of the text,
/// BOS/EOS, and turning ids back into bytes (<c>llama_token_to_piece</c>, <c>llama_detokenize</c>).
/// </summary>
/// <remarks>
/// Decoding goes through a per-token byte table rather than ML.Tokenizers' <c>Decode</c>: generation needs
/// the bytes of a single token (a byte-fallback or byte-level token may be a third of a UTF-8 character),
/// and llama.cpp's rules for control tokens and the first token's leading space differ from ML.Tokenizers'.
/// Instances are immutable and safe to share between threads.
/// </remarks>
public abstract class GgufTokenizer
{
    /// <summary>"No such token" (llama.cpp's LLAMA_TOKEN_NULL).</summary>
    public const int NoToken = GgufVocabulary.None;

    private readonly GgufVocabulary _vocab;
    // Bytes of every token as llama_token_to_piece(special = true) writes them: piece i is
    // _pieceBytes[_pieceOffsets[i] .. _pieceOffsets[i + 1]).
    private readonly byte[] _pieceBytes;
    private readonly int[] _pieceOffsets; // [n_vocab + 1]
    // Tokens cut out of the input before encoding, longest first; user-defined ones always are,
    // control/unknown ones only when parseSpecial is asked for.
    private readonly int[] _specialLongestFirst;
    private readonly bool _hasUserDefined;
    private readonly HashSet<int> _endOfGeneration;

    private protected GgufTokenizer(GgufVocabulary vocab, string model, string? pre, bool addBos, bool addEos, bool addSpacePrefix, bool cleanSpaces)
    {
        _vocab = vocab;
        Model = model;
        Pre = pre;
        AddBos = addBos;
        AddEos = addEos;
        AddSpacePrefix = addSpacePrefix;
        CleanSpaces = cleanSpaces;
        if (addBos && vocab.BosId == NoToken)
            throw new GgufFormatException(vocab.File, GgufTokenizerKeys.AddBos, $"is true but {GgufTokenizerKeys.BosId} names no token");
        if (addEos && vocab.EosId == NoToken)
            throw new GgufFormatException(vocab.File, GgufTokenizerKeys.AddEos, $"is true but {GgufTokenizerKeys.EosId} names no token");
        _specialLongestFirst = vocab.SpecialTokensLongestFirst();
        _hasUserDefined = Array.Exists(vocab.Types, t => t == GgufTokenType.UserDefined);
        _endOfGeneration = [.. vocab.EndOfGeneration];
        (_pieceBytes, _pieceOffsets) = BuildPieceTable(vocab);
        for (int i = 0; i < vocab.Count; i++)
            MaxPieceBytes = Math.Max(MaxPieceBytes, _pieceOffsets[i + 1] - _pieceOffsets[i]);
    }

    /// <summary>Builds the tokenizer the metadata describes, chosen by <c>tokenizer.ggml.model</c>.</summary>
    /// <exception cref="GgufFormatException">A key is missing, mistyped or inconsistent, or the tokenizer model
    /// or pre-tokenizer is not supported; the message names the file and the key.</exception>
    public static GgufTokenizer Create(GgufMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string model = metadata.GetString(GgufTokenizerKeys.Model);
        return model switch
        {
            "llama" => new SentencePieceGgufTokenizer(metadata),
            "gpt2" => new ByteLevelBpeGgufTokenizer(metadata),
            _ => throw new GgufFormatException(metadata.File, GgufTokenizerKeys.Model,
                $"tokenizer model '{model}' is not supported (supported: 'llama' SentencePiece, 'gpt2' byte-level BPE)"),
        };
    }

    /// <summary>The value of <c>tokenizer.ggml.model</c>: <c>llama</c> or <c>gpt2</c>.</summary>
    public string Model { get; }

    /// <summary>The value of <c>tokenizer.ggml.pre</c>, when present.</summary>
    public string? Pre { get; }

    /// <summary>The Microsoft.ML.Tokenizers tokenizer that runs the subword algorithm (for tests: its
    /// vocabulary may be transformed, see <see cref="SentencePieceGgufTokenizer"/>).</summary>
    internal abstract Tokenizer Inner { get; }

    /// <summary>Number of tokens in the vocabulary.</summary>
    public int VocabSize => _vocab.Count;

    /// <summary>Beginning-of-sequence token, or <see cref="NoToken"/>.</summary>
    public int BosId => _vocab.BosId;

    /// <summary>End-of-sequence token, or <see cref="NoToken"/>.</summary>
    public int EosId => _vocab.EosId;

    /// <summary>Unknown token, or <see cref="NoToken"/>.</summary>
    public int UnknownId => _vocab.UnknownId;

    /// <summary>End-of-turn token (key <c>tokenizer.ggml.eot_token_id</c>, else found by its text such as
    /// <c>&lt;|eot_id|&gt;</c>), or <see cref="NoToken"/>.</summary>
    public int EotId => _vocab.EotId;

    /// <summary>End-of-message token (<c>&lt;|eom_id|&gt;</c>), or <see cref="NoToken"/>.</summary>
    public int EomId => _vocab.EomId;

    /// <summary>Whether encoding with special tokens adds BOS (<c>tokenizer.ggml.add_bos_token</c>).</summary>
    public bool AddBos { get; }

    /// <summary>Whether encoding with special tokens adds EOS (<c>tokenizer.ggml.add_eos_token</c>).</summary>
    public bool AddEos { get; }

    /// <summary>SentencePiece's dummy prefix: a space is put before the text (and removed from the first
    /// token when decoding).</summary>
    public bool AddSpacePrefix { get; }

    /// <summary>Whether <see cref="Decode"/> applies llama.cpp's <c>clean_spaces</c> by default
    /// (Hugging Face's <c>clean_up_tokenization_spaces</c>: " ." becomes ".", …); true for GPT-2.</summary>
    public bool CleanSpaces { get; }

    /// <summary>Tokens that end a generation: EOS, EOT and EOM when present, ascending.</summary>
    public IReadOnlyList<int> EndOfGenerationIds => _vocab.EndOfGeneration;

    /// <summary>True when <paramref name="id"/> ends a generation (EOS, EOT, EOM).</summary>
    public bool IsEndOfGeneration(int id) => _endOfGeneration.Contains(id);

    /// <summary>The token's text as stored in the vocabulary (SentencePiece writes a space as U+2581,
    /// GPT-2 as 'Ġ').</summary>
    public string GetTokenText(int id) => _vocab.Tokens[CheckId(id)];

    /// <summary>The token's type (normal, control, byte, …).</summary>
    public GgufTokenType GetTokenType(int id) => _vocab.Types[CheckId(id)];

    /// <summary>The token's score (SentencePiece merge priority; 0 for GPT-2).</summary>
    public float GetTokenScore(int id) => _vocab.Scores[CheckId(id)];

    /// <summary>True for control and unknown tokens: they print only when special tokens are rendered.</summary>
    public bool IsSpecial(int id) => GetTokenType(id) is GgufTokenType.Control or GgufTokenType.Unknown;

    /// <summary>Finds the id of a token by its stored text.</summary>
    public bool TryGetTokenId(string tokenText, out int id) => _vocab.TryGetId(tokenText, out id);

    /// <summary>The bytes of one token as llama.cpp prints it (<c>llama_token_to_piece</c>, lstrip 0):
    /// a byte token is its one byte, a control token its text when <paramref name="renderSpecial"/>,
    /// else nothing. May be part of a UTF-8 character.</summary>
    public ReadOnlySpan<byte> GetPieceBytes(int id, bool renderSpecial = true)
    {
        CheckId(id);
        if (!renderSpecial && IsSpecial(id)) return default;
        return _pieceBytes.AsSpan(_pieceOffsets[id], _pieceOffsets[id + 1] - _pieceOffsets[id]);
    }

    /// <summary>The length in bytes of the longest token piece (<see cref="GetPieceBytes"/>).</summary>
    public int MaxPieceBytes { get; }

    /// <summary>Tokenizes <paramref name="text"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecial">Add BOS (and EOS) as the vocabulary asks (llama.cpp's <c>add_special</c>).</param>
    /// <param name="parseSpecial">Turn control-token texts in <paramref name="text"/> (such as <c>&lt;s&gt;</c>)
    /// into those tokens; otherwise they are tokenized as plain text (llama.cpp's <c>parse_special</c>).</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        var ids = new List<int>(text.Length / 3 + 2);
        Encode(text, ids, addSpecial, parseSpecial);
        return [.. ids];
    }

    /// <summary>Tokenizes <paramref name="text"/>, appending the ids to <paramref name="output"/>.</summary>
    /// <inheritdoc cref="Encode(string, bool, bool)"/>
    public void Encode(string text, List<int> output, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(output);
        if (addSpecial && AddBos) output.Add(BosId);
        if (text.Length > 0)
        {
            if (!parseSpecial && !_hasUserDefined)
            {
                EncodeFragment(text, output);
            }
            else
            {
                foreach (var fragment in Partition(text, parseSpecial))
                {
                    if (fragment.Token != NoToken) output.Add(fragment.Token);
                    else EncodeFragment(text.AsSpan(fragment.Start, fragment.Length), output);
                }
            }
        }
        if (addSpecial && AddEos) output.Add(EosId);
    }

    /// <summary>Tokenizes a piece of plain text (no special tokens in it) with the subword model.</summary>
    private protected abstract void EncodeFragment(ReadOnlySpan<char> text, List<int> output);

    /// <summary>Turns ids back into text as llama.cpp's <c>llama_detokenize</c> does (for a <c>List&lt;int&gt;</c>,
    /// pass <c>CollectionsMarshal.AsSpan(list)</c>).</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="renderSpecial">Write control tokens as their text (<c>&lt;s&gt;</c>); otherwise they vanish.</param>
    /// <param name="removeSpecial">Drop a leading BOS and trailing EOS when the vocabulary adds them.</param>
    /// <param name="cleanSpaces">Apply the clean-up of spaces before punctuation; null: <see cref="CleanSpaces"/>.</param>
    /// <remarks>With <see cref="AddSpacePrefix"/>, one leading space of the first token is removed (the
    /// dummy prefix the encoder added). Bytes that do not form valid UTF-8 become U+FFFD.</remarks>
    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = true, bool removeSpecial = false, bool? cleanSpaces = null)
    {
        bool removeSpace = AddSpacePrefix;
        if (removeSpecial && AddBos && ids.Length > 0 && ids[0] == BosId)
        {
            removeSpace = false;
            ids = ids[1..];
        }
        if (removeSpecial && AddEos && ids.Length > 0 && ids[^1] == EosId)
            ids = ids[..^1];

        var bytes = new List<byte>(ids.Length * 4);
        for (int i = 0; i < ids.Length; i++)
        {
            ReadOnlySpan<byte> piece = GetPieceBytes(ids[i], renderSpecial);
            if (removeSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
            removeSpace = false;
            bytes.AddRange(piece);
        }
        if (cleanSpaces ?? CleanSpaces) SpaceCleanup.Apply(bytes);
        return System.Text.Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>A detokenizer for a generation: append ids one at a time, get back the text they complete.</summary>
    /// <param name="renderSpecial">Print control tokens as their text.</param>
    /// <param name="removeLeadingSpace">Remove one leading space of the first token, as <see cref="Decode"/>
    /// does for a whole text. llama.cpp prints a completion after its prompt without doing so (the space
    /// separates the prompt's last word from the first generated one), hence false by default.</param>
    public StreamingDetokenizer CreateStreamingDetokenizer(bool renderSpecial = false, bool removeLeadingSpace = false) =>
        new(this, renderSpecial, removeLeadingSpace && AddSpacePrefix);

    private int CheckId(int id)
    {
        if ((uint)id >= (uint)_vocab.Count)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_vocab.Count}");
        return id;
    }

    /// <summary>The bytes a token prints as (renderSpecial = true); the model decides.</summary>
    private protected abstract void AppendPiece(int id, string text, GgufTokenType type, List<byte> output);

    private (byte[] Bytes, int[] Offsets) BuildPieceTable(GgufVocabulary vocab)
    {
        var bytes = new List<byte>(vocab.Count * 6);
        var offsets = new int[vocab.Count + 1];
        for (int i = 0; i < vocab.Count; i++)
        {
            offsets[i] = bytes.Count;
            try
            {
                AppendPiece(i, vocab.Tokens[i], vocab.Types[i], bytes);
            }
            catch (FormatException e)
            {
                throw new GgufFormatException(vocab.File, GgufTokenizerKeys.Tokens, $"token {i}: {e.Message}");
            }
        }
        offsets[vocab.Count] = bytes.Count;
        return ([.. bytes], offsets);
    }

    private readonly record struct Fragment(int Start, int Length, int Token);

    // llama.cpp's tokenizer_st_partition: for each special token, longest first, split every remaining
    // text fragment around its occurrences. Control and unknown tokens only when parseSpecial.
    private List<Fragment> Partition(string text, bool parseSpecial)
    {
        var fragments = new List<Fragment> { new(0, text.Length, NoToken) };
        var next = new List<Fragment>();
        foreach (int id in _specialLongestFirst)
        {
            if (!parseSpecial && _vocab.Types[id] != GgufTokenType.UserDefined) continue;
            string special = _vocab.Tokens[id];
            if (special.Length == 0) continue;
            next.Clear();
            foreach (var f in fragments)
            {
                if (f.Token != NoToken) { next.Add(f); continue; }
                int start = f.Start, end = f.Start + f.Length;
                while (start < end)
                {
                    int at = text.AsSpan(start, end - start).IndexOf(special, StringComparison.Ordinal);
                    if (at < 0) break;
                    if (at > 0) next.Add(new(start, at, NoToken));
                    next.Add(new(start + at, special.Length, id));
                    start += at + special.Length;
                }
                if (start < end) next.Add(new(start, end - start, NoToken));
            }
            (fragments, next) = (next, fragments);
        }
        return fragments;
    }
}
