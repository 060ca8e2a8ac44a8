using System.Text.RegularExpressions;
using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>The stories260K fixture's tokenizer against llama.cpp's outputs in ../shared/models/REFERENCE.md.</summary>
public sealed class Stories260KTokenizerTests
{
    [RequiresSharedFact]
    public void Prompt_with_bos_matches_llama_cpp_ids()
    {
        var tokenizer = TokenizerVectors.Stories260KTokenizer;
        Assert.Equal([1, 403, 407, 261, 378], tokenizer.Encode("Once upon a time"));
        Assert.Equal(ReferenceIds("Prompt token ids (both files)"), tokenizer.Encode("Once upon a time"));
    }

    [RequiresSharedFact]
    public void Vocabulary_facts_are_read_from_the_metadata()
    {
        var tokenizer = TokenizerVectors.Stories260KTokenizer;
        Assert.Equal("llama", tokenizer.Model);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal((1, 2, 0), (tokenizer.BosId, tokenizer.EosId, tokenizer.UnknownId));
        Assert.True(tokenizer.AddBos);
        Assert.False(tokenizer.AddEos);
        Assert.True(tokenizer.IsEndOfGeneration(2));
        Assert.False(tokenizer.IsEndOfGeneration(1));
        Assert.Equal([2], tokenizer.EndOfGenerationIds);
        Assert.Equal("<s>", tokenizer.GetTokenText(1));
        Assert.Equal(GgufTokenType.Control, tokenizer.GetTokenType(1));
        Assert.Equal(GgufTokenType.Byte, tokenizer.GetTokenType(3 + 0x0A));
        Assert.True(tokenizer.TryGetTokenId("▁Once", out int once));
        Assert.Equal(403, once);
    }

    [RequiresSharedFact]
    public void Decoding_prompt_and_generated_f32_ids_gives_llama_cpp_text()
    {
        var tokenizer = TokenizerVectors.Stories260KTokenizer;
        int[] ids = [.. ReferenceIds("Prompt token ids (both files)"), .. ReferenceIds("Generated ids, F32")];
        Assert.Equal(205, ids.Length);
        // The text block holds the whole run (251 generated tokens) while the ids are its first 200: their
        // text is the reference up to the quote that opens the last sentence of the fourth paragraph.
        string reference = ReferenceText();
        Assert.StartsWith("<s> Once upon a time, there was a little girl named Lily.", reference);
        string decoded = tokenizer.Decode(ids);
        Assert.EndsWith("Lily didn't want to help her mom, so she said, \"I", decoded);
        Assert.Equal(reference[..decoded.Length], decoded);
        string expected = decoded;

        // Printed one token at a time, as llama.cpp prints a generation, the text is the same.
        var stream = tokenizer.CreateStreamingDetokenizer(renderSpecial: true);
        string streamed = string.Concat(ids.Select(stream.Append)) + stream.Flush();
        Assert.Equal(expected, streamed);
    }

    [RequiresSharedFact]
    public void Streaming_keeps_the_space_of_the_first_generated_word()
    {
        // llama.cpp prints generated tokens with lstrip 0: "▁Once" prints as " Once".
        var stream = TokenizerVectors.Stories260KTokenizer.CreateStreamingDetokenizer();
        Assert.Equal(" Once", stream.Append(403));
        Assert.Equal(" upon", stream.Append(407));
        Assert.Equal("", stream.Append(2)); // EOS is a control token: nothing unless rendered
    }

    private static string ReferenceMarkdown() => File.ReadAllText(SharedFixtures.PathOf("models", "REFERENCE.md"));

    // The first fenced or back-quoted run of integers after a line starting with the heading.
    private static int[] ReferenceIds(string heading)
    {
        string md = ReferenceMarkdown();
        int at = md.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(at >= 0, $"REFERENCE.md has no '{heading}'");
        var m = Regex.Match(md[(at + heading.Length)..], @"[`\n]\s*(\d+(?: \d+)+)\s*\n?[`]");
        Assert.True(m.Success, $"no ids after '{heading}'");
        return [.. m.Groups[1].Value.Split(' ').Select(int.Parse)];
    }

    private static string ReferenceText()
    {
        string md = ReferenceMarkdown();
        const string heading = "Text of the F32 run";
        int at = md.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(at >= 0, $"REFERENCE.md has no '{heading}'");
        int open = md.IndexOf("```\n", at, StringComparison.Ordinal) + 4;
        int close = md.IndexOf("\n```", open, StringComparison.Ordinal);
        return md[open..(close + 1)];
    }
}
