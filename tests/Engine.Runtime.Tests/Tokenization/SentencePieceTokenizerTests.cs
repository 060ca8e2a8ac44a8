using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>The llama (SentencePiece) tokenizer on small vocabularies whose llama.cpp results are worked out by hand.</summary>
public sealed class SentencePieceTokenizerTests
{
    [Fact]
    public void Equal_scores_merge_leftmost_first_as_sentencepiece_and_llama_cpp_do()
    {
        // "▁!!!!!!": ▁! merges first (best score); then the "!!" pairs, leftmost first: (1,2) is gone with
        // the ▁, so (2,3) and (4,5) merge, and the last "!" joins "!!" into "!!!" → ▁! !! !!!.
        // Taking the rightmost first instead would give ▁! !!! !!.
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("!", -11), ("▁!", -1), ("!!", -2), ("!!!", -3)));
        int[] expected = [Id(t, "▁!"), Id(t, "!!"), Id(t, "!!!")];
        Assert.Equal(expected, t.Encode("!!!!!!", addSpecial: false));
    }

    [Fact]
    public void Higher_score_wins_over_position()
    {
        // "▁abab": ▁a (-1) beats ab (-2) although both start at the left; then "ab" at the right.
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("b", -12), ("▁a", -1), ("ab", -2)));
        Assert.Equal([Id(t, "▁a"), Id(t, "b"), Id(t, "ab")], t.Encode("abab", addSpecial: false));
    }

    [Fact]
    public void Characters_outside_the_vocabulary_fall_back_to_their_utf8_bytes()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        // 'é' is C3 A9, '’' is E2 80 99, '🦙' is F0 9F A6 99 (a surrogate pair in UTF-16); byte b is id 3 + b.
        Assert.Equal([Id(t, "▁a"), 3 + 0xC3, 3 + 0xA9, 3 + 0xE2, 3 + 0x80, 3 + 0x99, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99, Id(t, "a")],
            t.Encode("aé’🦙a", addSpecial: false));
        Assert.Equal("aé’🦙a", t.Decode(t.Encode("aé’🦙a", addSpecial: false)));
    }

    [Fact]
    public void Bos_is_added_when_asked_and_the_dummy_prefix_space_is_removed_when_decoding()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        Assert.True(t.AddBos); // llama vocabularies add BOS unless tokenizer.ggml.add_bos_token says otherwise
        Assert.Equal([1, Id(t, "▁a")], t.Encode("a"));
        Assert.Equal([Id(t, "▁a")], t.Encode("a", addSpecial: false));
        Assert.Equal([1], t.Encode(""));
        Assert.Empty(t.Encode("", addSpecial: false));

        Assert.Equal("a", t.Decode([Id(t, "▁a")]));                  // leading space of the first token removed
        Assert.Equal("a a", t.Decode([Id(t, "▁a"), Id(t, "▁a")]));
        Assert.Equal("<s> a", t.Decode([1, Id(t, "▁a")]));            // BOS rendered, so the space stays
        Assert.Equal(" a", t.Decode([1, Id(t, "▁a")], renderSpecial: false));
        // llama_detokenize keeps the space when it removes a leading BOS (remove_space = false there).
        Assert.Equal(" a", t.Decode([1, Id(t, "▁a")], removeSpecial: true));
    }

    [Fact]
    public void Encode_appends_to_the_callers_list()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        var ids = new List<int> { 42 };
        t.Encode("a", ids);
        Assert.Equal([42, 1, Id(t, "▁a")], ids);
    }

    [Fact]
    public void Special_token_text_is_plain_text_unless_parse_special_is_asked()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("<", -12), ("s", -13), (">", -14), ("/", -15), ("▁a", -1)));
        int[] plain = t.Encode("a</s>a", addSpecial: false);
        Assert.DoesNotContain(2, plain);
        Assert.Equal("a</s>a", t.Decode(plain));

        // llama.cpp puts the dummy-prefix space before each run of text after a special token too.
        Assert.Equal([Id(t, "▁a"), 2, Id(t, "▁a")], t.Encode("a</s>a", addSpecial: false, parseSpecial: true));
        Assert.Equal([1, 2], t.Encode("<s></s>", addSpecial: false, parseSpecial: true));
    }

    [RequiresSharedFact]
    public void Llama_vocabulary_parses_control_tokens_and_ends_generation_on_eos()
    {
        var t = TokenizerVectors.LlamaSpmTokenizer;
        Assert.True(t.TryGetTokenId("▁Hello", out int hello));
        Assert.Equal([1, 1, hello], t.Encode("<s>Hello", addSpecial: true, parseSpecial: true));
        Assert.True(t.IsEndOfGeneration(t.EosId));
        Assert.Equal(32000, t.VocabSize);
        Assert.Equal(GgufTokenizer.NoToken, t.EotId);
    }

    private static int Id(GgufTokenizer t, string piece) => SyntheticVocabularies.SpmId(t, piece);
}
