using Engine.Core.Gguf;
using Engine.Runtime.Tokenization;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>Bad tokenizer metadata fails with a <see cref="GgufFormatException"/> naming the file and the key.</summary>
public sealed class TokenizerMetadataErrorTests
{
    private static GgufMetadata ValidSpm() => SyntheticVocabularies.Spm(("▁", -1), ("a", -2));

    private static GgufFormatException Fails(GgufMetadata metadata, string key)
    {
        var e = Assert.Throws<GgufFormatException>(() => GgufTokenizer.Create(metadata));
        Assert.Equal(key, e.Field);
        Assert.Equal(SyntheticVocabularies.File, e.File);
        Assert.Contains(key, e.Message);
        return e;
    }

    [Fact]
    public void Unknown_tokenizer_model_names_the_value()
    {
        var m = ValidSpm();
        m.Set(GgufTokenizerKeys.Model, GgufValue.Of("bert"));
        Assert.Contains("'bert'", Fails(m, GgufTokenizerKeys.Model).Message);
    }

    [Fact]
    public void Missing_tokenizer_model_is_named()
    {
        var m = new GgufMetadata(SyntheticVocabularies.File);
        m.Set(GgufTokenizerKeys.Tokens, GgufValue.Of(new[] { "a" }));
        Fails(m, GgufTokenizerKeys.Model);
    }

    [Fact]
    public void Missing_tokens_array_is_named()
    {
        var m = new GgufMetadata(SyntheticVocabularies.File);
        m.Set(GgufTokenizerKeys.Model, GgufValue.Of("llama"));
        Assert.Contains("missing", Fails(m, GgufTokenizerKeys.Tokens).Message);
    }

    [Fact]
    public void Scores_of_another_length_than_the_tokens_are_named()
    {
        var m = ValidSpm();
        m.Set(GgufTokenizerKeys.Scores, GgufValue.Of(new float[] { 0, 0, 0 }));
        Assert.Contains("has 3 entries", Fails(m, GgufTokenizerKeys.Scores).Message);
    }

    [Fact]
    public void Token_types_of_another_length_or_value_are_named()
    {
        var m = ValidSpm();
        m.Set(GgufTokenizerKeys.TokenType, GgufValue.Of(new[] { 1, 1 }));
        Fails(m, GgufTokenizerKeys.TokenType);

        var n = ValidSpm();
        int[] types = (int[])n.Get(GgufTokenizerKeys.TokenType).Value;
        types[^1] = 9;
        Assert.Contains("unknown type 9", Fails(n, GgufTokenizerKeys.TokenType).Message);
    }

    [Fact]
    public void Tokens_that_are_not_strings_are_named()
    {
        var m = ValidSpm();
        m.Set(GgufTokenizerKeys.Tokens, GgufValue.Of(new[] { 1, 2, 3 }));
        Fails(m, GgufTokenizerKeys.Tokens);
    }

    [Fact]
    public void Duplicate_tokens_are_named()
    {
        var m = SyntheticVocabularies.Spm(("a", -1), ("a", -2));
        Assert.Contains("duplicate", Fails(m, GgufTokenizerKeys.Tokens).Message);
    }

    [Fact]
    public void Unsupported_gpt2_pre_tokenizer_names_the_value()
    {
        var m = SyntheticVocabularies.Gpt2("deepseek-coder");
        Assert.Contains("'deepseek-coder'", Fails(m, GgufTokenizerKeys.Pre).Message);
    }

    [Fact]
    public void Gpt2_without_merges_is_named()
    {
        var m = new GgufMetadata(SyntheticVocabularies.File);
        var source = SyntheticVocabularies.Gpt2("gpt-2");
        foreach (var kv in source.Entries)
            if (kv.Key != GgufTokenizerKeys.Merges) m.Set(kv.Key, kv.Value);
        Fails(m, GgufTokenizerKeys.Merges);
    }

    [Fact]
    public void Malformed_merge_is_named()
    {
        var m = SyntheticVocabularies.Gpt2("gpt-2", "ab");
        Assert.Contains("'ab'", Fails(m, GgufTokenizerKeys.Merges).Message);
    }

    [Fact]
    public void Add_bos_without_a_bos_token_is_named()
    {
        var m = SyntheticVocabularies.Gpt2("gpt-2");
        m.Set(GgufTokenizerKeys.BosId, GgufValue.Of(uint.MaxValue)); // converters write 0xFFFFFFFF for "none"
        m.Set(GgufTokenizerKeys.AddBos, GgufValue.Of(true));
        Fails(m, GgufTokenizerKeys.AddBos);
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_keep_the_default()
    {
        var m = ValidSpm();
        m.Set(GgufTokenizerKeys.PaddingId, GgufValue.Of(uint.MaxValue));
        m.Set(GgufTokenizerKeys.EosId, GgufValue.Of(uint.MaxValue));
        Assert.Equal(2, GgufTokenizer.Create(m).EosId);
    }
}
