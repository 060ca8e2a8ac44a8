using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>
/// The ids → text direction of llama.cpp's tokenizer vectors. test-tokenizer-0.cpp itself only prints
/// <c>common_detokenize(ctx, ids)</c> (llama_detokenize with special tokens rendered); these tests pin
/// what that function returns: the input text again, except where llama.cpp's clean_spaces rewrites it.
/// </summary>
public sealed class DecodeVectorTests
{
    [RequiresSharedFact]
    public void Llama_spm_decoding_the_expected_ids_gives_back_every_input()
    {
        // SentencePiece: the dummy-prefix space is removed from the first token only, so " Hello"
        // (▁ + ▁Hello) and "Hello" (▁Hello) both come back exactly.
        var tokenizer = TokenizerVectors.LlamaSpmTokenizer;
        AssertDecodes(tokenizer, TokenizerVectors.LlamaSpm, c => tokenizer.Decode(c.Ids), c => c.Text);
    }

    [RequiresSharedFact]
    public void Gpt2_decoding_without_space_cleanup_gives_back_every_input()
    {
        var tokenizer = TokenizerVectors.Gpt2Tokenizer;
        AssertDecodes(tokenizer, TokenizerVectors.Gpt2, c => tokenizer.Decode(c.Ids, cleanSpaces: false), c => c.Text);
    }

    [RequiresSharedFact]
    public void Gpt2_default_decoding_cleans_the_space_before_a_question_mark_as_llama_cpp_does()
    {
        // llama.cpp sets clean_spaces for the gpt-2 pre-tokenizer: " ?", " !", " .", " ," lose the space
        // (and " 's", " 'm", " 're", " 've", " ' "). In these vectors only " ?" occurs; the guard below keeps
        // the simple expectation honest if the vectors change.
        var tokenizer = TokenizerVectors.Gpt2Tokenizer;
        Assert.True(tokenizer.CleanSpaces);
        var cases = TokenizerVectors.Cases(TokenizerVectors.Gpt2);
        foreach (var c in cases)
            foreach (string other in new[] { " !", " .", " ,", " 's", " 'm", " 're", " 've", " ' " })
                Assert.False(c.Text.Contains(other, StringComparison.Ordinal), $"case {c.Index} holds '{other}': extend this test");
        Assert.Contains(cases, c => c.Text.Contains(" ?", StringComparison.Ordinal));

        AssertDecodes(tokenizer, TokenizerVectors.Gpt2, c => tokenizer.Decode(c.Ids), c => c.Text.Replace(" ?", "?", StringComparison.Ordinal));
    }

    private static void AssertDecodes(GgufTokenizer tokenizer, string vocab, Func<TokenizerCase, string> decode, Func<TokenizerCase, string> expected)
    {
        var cases = TokenizerVectors.Cases(vocab);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            string text = decode(c), want = expected(c);
            if (text != want)
                failures.Add($"case {c.Index}: expected {TokenizerVectors.Show(want)}\n  got {TokenizerVectors.Show(text)}");
        }
        Assert.True(failures.Count == 0, $"{vocab}: {failures.Count} of {cases.Count} cases differ:\n" + string.Join('\n', failures));
    }
}
