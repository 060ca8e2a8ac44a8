using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>
/// Every case of llama.cpp's own tokenizer test vectors (tests/test-tokenizer-0.cpp), both vocabularies,
/// both directions. Each test checks all cases and reports every failing one.
/// </summary>
public sealed class VocabularyVectorTests
{
    [RequiresSharedFact]
    public void Llama_spm_text_to_ids_matches_llama_cpp_for_every_case() =>
        AssertEncodes(TokenizerVectors.LlamaSpmTokenizer, TokenizerVectors.LlamaSpm);

    [RequiresSharedFact]
    public void Gpt2_text_to_ids_matches_llama_cpp_for_every_case() =>
        AssertEncodes(TokenizerVectors.Gpt2Tokenizer, TokenizerVectors.Gpt2);

    private static void AssertEncodes(GgufTokenizer tokenizer, string vocab)
    {
        var cases = TokenizerVectors.Cases(vocab);
        Assert.True(cases.Count >= 40, $"{vocab}: only {cases.Count} cases read");
        var failures = new List<string>();
        foreach (var c in cases)
        {
            int[] ids = tokenizer.Encode(c.Text, addSpecial: false, parseSpecial: false);
            if (!ids.AsSpan().SequenceEqual(c.Ids))
                failures.Add($"case {c.Index} {TokenizerVectors.Show(c.Text)}\n  expected {string.Join(' ', c.Ids)}\n  got      {string.Join(' ', ids)}");
        }
        Assert.True(failures.Count == 0, $"{vocab}: {failures.Count} of {cases.Count} cases differ:\n" + string.Join('\n', failures));
    }
}
