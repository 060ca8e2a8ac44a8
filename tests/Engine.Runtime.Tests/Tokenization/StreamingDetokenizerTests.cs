using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>Text streamed one token at a time comes out in whole characters.</summary>
public sealed class StreamingDetokenizerTests
{
    [Fact]
    public void Byte_fallback_tokens_come_out_as_one_character_once_complete()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        var stream = t.CreateStreamingDetokenizer();
        // ’ = E2 80 99; byte b is id 3 + b.
        Assert.Equal(" a", stream.Append(SyntheticVocabularies.SpmId(t, "▁a")));
        Assert.Equal("", stream.Append(3 + 0xE2));
        Assert.Equal("", stream.Append(3 + 0x80));
        Assert.Equal("’", stream.Append(3 + 0x99));
        Assert.Equal("a", stream.Append(SyntheticVocabularies.SpmId(t, "a")));
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void Span_overload_writes_the_same_text_as_the_string_overload()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        int[] ids = [SyntheticVocabularies.SpmId(t, "▁a"), 3 + 0xE2, 3 + 0x80, 3 + 0x99, SyntheticVocabularies.SpmId(t, "a")];
        var stream = t.CreateStreamingDetokenizer();
        Span<char> buffer = stackalloc char[stream.MaxCharsPerToken];
        var written = new List<string>();
        foreach (int id in ids) written.Add(new string(buffer[..stream.Append(id, buffer)]));
        Assert.Equal([" a", "", "", "’", "a"], written);
    }

    [Fact]
    public void A_four_byte_character_is_held_until_its_last_byte()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10)));
        var stream = t.CreateStreamingDetokenizer();
        int[] llama = [3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99]; // 🦙
        Assert.Equal(["", "", "", "🦙"], llama.Select(stream.Append).ToArray());
    }

    [Fact]
    public void Flush_turns_an_unfinished_character_into_a_replacement_character()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10)));
        var stream = t.CreateStreamingDetokenizer();
        Assert.Equal("", stream.Append(3 + 0xE2));
        Assert.Equal("", stream.Append(3 + 0x80));
        Assert.Equal("\uFFFD", stream.Flush());
        stream.Reset();
        Assert.Equal("A", stream.Append(3 + 'A'));
    }

    [Fact]
    public void Leading_space_is_kept_by_default_and_removed_on_request()
    {
        var t = GgufTokenizer.Create(SyntheticVocabularies.Spm(("▁", -10), ("a", -11), ("▁a", -1)));
        int a = SyntheticVocabularies.SpmId(t, "▁a");
        Assert.Equal(" a", t.CreateStreamingDetokenizer().Append(a));
        var fresh = t.CreateStreamingDetokenizer(removeLeadingSpace: true);
        Assert.Equal("a", fresh.Append(a));
        Assert.Equal(" a", fresh.Append(a));
    }

    [RequiresSharedFact]
    public void Streaming_every_vector_case_equals_decoding_it_whole()
    {
        foreach (var (tokenizer, vocab) in new[] { (TokenizerVectors.LlamaSpmTokenizer, TokenizerVectors.LlamaSpm), (TokenizerVectors.Gpt2Tokenizer, TokenizerVectors.Gpt2) })
        {
            foreach (var c in TokenizerVectors.Cases(vocab))
            {
                var stream = tokenizer.CreateStreamingDetokenizer(removeLeadingSpace: true);
                var pieces = c.Ids.Select(stream.Append).Append(stream.Flush()).ToList();
                Assert.All(pieces, p => Assert.DoesNotContain('\uFFFD', p));
                Assert.Equal(tokenizer.Decode(c.Ids, cleanSpaces: false), string.Concat(pieces));
            }
        }
    }
}
