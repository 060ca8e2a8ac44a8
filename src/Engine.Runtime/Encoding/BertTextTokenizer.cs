using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Engine.Runtime.Encoding;

/// <summary>
/// BERT uncased WordPiece (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>) configured as HF's
/// <c>BertTokenizer(do_lower_case=True)</c>: basic tokenization (our own split, see <c>BasicSplit</c>), lower-casing,
/// accents stripped (by <see cref="AccentFolding"/>, since invariant globalization disables the library's own).
/// <para>
/// Truncation rule: a text becomes <c>[CLS] pieces… [SEP]</c> with at most <see cref="MaxSequenceLength"/> ids in
/// all; the word pieces past <c>MaxSequenceLength - 2</c> are dropped (the head of the text is kept, as
/// sentence-transformers truncates). Only the first <see cref="MaxInputChars"/> characters are looked at, which
/// bounds the work for huge inputs and never changes the result for text made of ordinary words. Empty or
/// whitespace text is <c>[CLS] [SEP]</c>.
/// </para>
/// </summary>
public sealed class BertTextTokenizer
{
    /// <summary>[CLS] and [SEP] ids in the BERT uncased vocabulary (vocab.txt lines 102 and 103).</summary>
    public const int ClsId = 101, SepId = 102;

    /// <summary>Characters of a text that are tokenized: 64 per token of a 256-token window with a wide margin.</summary>
    public const int MaxInputChars = 1 << 16;

    // HF BasicTokenizer's splitting (tokenization_bert.py): each punctuation character is a token, where punctuation is
    // Unicode P* or any non-alphanumeric ASCII printable (so $ + < = > ^ ` | ~ count, which the library's own
    // BertPreTokenizer drops); each CJK ideograph (BMP blocks) is a token; other runs of non-space characters are
    // words (so € £ stay attached: "€5" → "€", "##5"); control and format characters are removed.
    private const string Punctuation = @"\p{P}!-/:-@\[-`{-~";
    private const string CjkIdeographs = @"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF";
    private static readonly Regex BasicSplit = new(
        $@"[{Punctuation}]|[{CjkIdeographs}]|[^\s\p{{Cc}}\p{{Cf}}{Punctuation}{CjkIdeographs}]+",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    private readonly BertTokenizer _tokenizer;

    public BertTextTokenizer(Stream vocabulary, int maxSequenceLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSequenceLength, 2);
        _tokenizer = BertTokenizer.Create(vocabulary, new BertOptions
        {
            LowerCaseBeforeTokenization = true,
            ApplyBasicTokenization = true,
            PreTokenizer = new RegexPreTokenizer(BasicSplit, specialTokens: null), // user text never yields [CLS]/[SEP]/…
            RemoveNonSpacingMarks = true,
        });
        MaxSequenceLength = maxSequenceLength;
        if (_tokenizer.ClassificationTokenId != ClsId || _tokenizer.SeparatorTokenId != SepId)
            throw new InvalidDataException($"vocabulary puts [CLS] at {_tokenizer.ClassificationTokenId} and [SEP] at {_tokenizer.SeparatorTokenId}, expected {ClsId} and {SepId}");
    }

    /// <summary>Most ids per text, [CLS] and [SEP] included.</summary>
    public int MaxSequenceLength { get; }

    /// <summary>The ids of <paramref name="text"/>: [CLS], word pieces, [SEP]; truncated as the class says.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var span = text.AsSpan();
        if (span.Length > MaxInputChars) span = span[..MaxInputChars];
        string folded = AccentFolding.Fold(span.Length == text.Length ? text : span.ToString());
        var ids = _tokenizer.EncodeToIds(folded, MaxSequenceLength - 2, addSpecialTokens: false, out _, out _);
        var result = new int[ids.Count + 2];
        result[0] = ClsId;
        for (int i = 0; i < ids.Count; i++) result[i + 1] = ids[i];
        result[^1] = SepId;
        return result;
    }
}
