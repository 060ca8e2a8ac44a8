using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>The gpt2 (byte-level BPE) tokenizer on small vocabularies and on GPT-2's.</summary>
public sealed class ByteLevelBpeTokenizerTests
{
    private static int Byte(char c) => c; // ids 0..255 are the bytes in SyntheticVocabularies.Gpt2

    [Fact]
    public void Merges_apply_by_rank_inside_each_pre_token()
    {
        // merges: "1 2" (256), "12 3" (257), "Ġ a" (258)
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("gpt-2", "1 2", "12 3", "Ġ a"));
        Assert.Equal([257], t.Encode("123"));
        // " a" is one pre-token ("Ġa"); "b" another.
        Assert.Equal([Byte('x'), 258, Byte('b')], t.Encode("x ab"));
        Assert.Equal("x ab", t.Decode(t.Encode("x ab")));
    }

    [Fact]
    public void Smollm_pre_tokenizer_splits_digits_one_by_one()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("smollm", "1 2", "12 3"));
        Assert.Equal([Byte('1'), Byte('2'), Byte('3')], t.Encode("123"));
        Assert.False(t.CleanSpaces);
    }

    [Fact]
    public void Bytes_of_non_ascii_text_map_through_the_byte_alphabet()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("gpt-2"));
        // 'é' = C3 A9: two byte-level symbols; ids are the byte values here.
        Assert.Equal([0xC3, 0xA9], t.Encode("é"));
        Assert.Equal("é", t.Decode([0xC3, 0xA9]));
    }

    [Fact]
    public void Endoftext_is_control_ends_generation_and_is_parsed_only_when_asked()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("gpt-2"));
        int eot = t.VocabSize - 1;
        Assert.False(t.AddBos); // gpt2 vocabularies add nothing unless the file says so
        Assert.Equal(eot, t.EosId);
        Assert.True(t.IsEndOfGeneration(eot));
        Assert.Equal([Byte('a'), eot], t.Encode("a<|endoftext|>", parseSpecial: true));
        Assert.DoesNotContain(eot, t.Encode("a<|endoftext|>"));
        Assert.Equal("a<|endoftext|>", t.Decode([Byte('a'), eot]));
        Assert.Equal("a", t.Decode([Byte('a'), eot], renderSpecial: false));
    }

    [Fact]
    public void Qwen2_pre_tokenizer_splits_single_digits_and_keeps_a_leading_symbol_with_its_word()
    {
        // "x1" + "23": digits one by one, "'s" a contraction, "_ab" one word with its leading '_'.
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("qwen2", "1 2", "_ a", "_a b"));
        Assert.Equal([Byte('1'), Byte('2')], t.Encode("12"));
        Assert.Equal([258], t.Encode("_ab"));
    }

    [Fact]
    public void Llama3_emits_a_whole_pre_token_found_in_the_vocabulary_and_groups_digits_by_three()
    {
        // merges: "a b" (256), "ab c" (257: "abc"), "1 2" (258), "12 3" (259: "123"), "4 5" (260)
        var llama3 = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("llama-bpe", "a b", "ab c", "1 2", "12 3", "4 5"));
        var gpt2 = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("gpt-2", "a b", "ab c", "1 2", "12 3", "4 5"));
        Assert.True(llama3.AddBos); // llama.cpp's default for Llama 3 vocabularies
        Assert.Equal([llama3.BosId, 259, 260], llama3.Encode("12345"));
        Assert.Equal([257], llama3.Encode("abc", addSpecial: false));

        // ignore_merges: "ab" is a token that no merge makes here (only "a b" → "ab" exists, and "ba" is
        // added whole); Llama 3 takes the pre-token "ba" whole, GPT-2's BPE cannot reach it.
        var llama3Ba = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("llama-bpe", ["ba"], "a b"));
        var gpt2Ba = GgufTokenizer.Create(SyntheticVocabularies.Gpt2("gpt-2", ["ba"], "a b"));
        Assert.True(llama3Ba.TryGetTokenId("ba", out int ba));
        Assert.Equal([ba], llama3Ba.Encode("ba", addSpecial: false));
        Assert.Equal([Byte('b'), Byte('a')], gpt2Ba.Encode("ba"));
        Assert.Equal([Byte('x'), 256], llama3Ba.Encode("xab", addSpecial: false)); // not whole in the vocabulary: BPE
    }

    [Theory]
    [InlineData("gpt-2")]
    [InlineData("phi-2")]
    [InlineData("starcoder")]
    [InlineData("smollm")]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    public void Supported_pre_tokenizers_round_trip_mixed_text(string pre)
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Gpt2(pre, "Ġ t", "h e", "Ġt he"));
        const string text = "the  the\n\t3.14 'll 🦙 déjà-vu ";
        Assert.Equal(text, t.Decode(t.Encode(text, addSpecial: false), cleanSpaces: false));
    }

    [RequiresSharedFact]
    public void Gpt2_vocabulary_facts()
    {
        var t = TokenizerVectors.Gpt2Tokenizer;
        Assert.Equal(("gpt2", "gpt-2", 50257), (t.Model, t.Pre, t.VocabSize));
        Assert.Equal(50256, t.EosId);
        Assert.Equal(50256, t.EotId); // <|endoftext|> found by its text, as llama.cpp does
        Assert.True(t.IsEndOfGeneration(50256));
        Assert.Equal("Ġthe", t.GetTokenText(262));
        Assert.Equal(" the"u8.ToArray(), t.GetPieceBytes(262).ToArray());
    }
}
