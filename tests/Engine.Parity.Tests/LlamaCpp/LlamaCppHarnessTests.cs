using Engine.Tests.Shared;
using Xunit.Abstractions;

namespace Engine.Parity.Tests.LlamaCpp;

/// <summary>
/// Validates the llama.cpp harness itself against llama.cpp's recorded outputs
/// (../shared/models/REFERENCE.md), before it serves as the oracle for our engine.
/// </summary>
public sealed class LlamaCppHarnessTests(ITestOutputHelper output)
{
    /// <summary>Prompt "Once upon a time" with BOS, as REFERENCE.md lists it.</summary>
    private static readonly int[] StoriesPrompt = [1, 403, 407, 261, 378];

    [Fact]
    public void Native_library_loads_and_uses_avx2()
    {
        LlamaCppNative.EnsureLoaded();
        output.WriteLine($"native variant: {LlamaCppNative.LoadedAvxLevel}; {LlamaCppNative.SystemInfo}");
        Assert.NotNull(LlamaCppNative.LoadedAvxLevel);
        Assert.Contains("AVX2 = 1", LlamaCppNative.SystemInfo);
    }

    [RequiresSharedFact]
    public void Greedy_ids_on_stories260K_f32_equal_llama_cpp_reference()
    {
        int[] expected = StoriesReference.GeneratedF32;
        using var llama = LlamaCppReference.Load(SharedFixtures.PathOf("models", "stories260K.f32.gguf"), threads: 1, contextSize: 256);
        int[] actual = llama.GenerateGreedy(StoriesPrompt, expected.Length);
        Assert.Equal(expected, actual);
    }

    [RequiresSharedFact]
    public void Greedy_ids_on_stories260K_q8_0_equal_llama_cpp_reference()
    {
        int[] expected = StoriesReference.GeneratedQ8_0;
        using var llama = LlamaCppReference.Load(SharedFixtures.PathOf("models", "stories260K.q8_0.gguf"), threads: 1, contextSize: 256);
        int[] actual = llama.GenerateGreedy(StoriesPrompt, expected.Length);
        Assert.Equal(expected, actual);
    }

    [RequiresSharedFact]
    public void Logits_of_a_batch_equal_logits_of_one_token_at_a_time()
    {
        // EvaluateLogits marks every position for output; its last row must be what greedy
        // generation sees after the same prefix, which pins the row-to-position mapping.
        using var llama = LlamaCppReference.Load(SharedFixtures.PathOf("models", "stories260K.f32.gguf"), threads: 1, contextSize: 64);
        float[][] rows = llama.EvaluateLogits(StoriesPrompt);
        Assert.Equal(StoriesPrompt.Length, rows.Length);
        Assert.All(rows, r => Assert.Equal(llama.VocabSize, r.Length));
        Assert.Equal(StoriesReference.GeneratedF32[0], LlamaCppReference.ArgMax(rows[^1]));
        float[][] prefix = llama.EvaluateLogits(StoriesPrompt[..3]);
        for (int p = 0; p < 3; p++)
            Assert.Equal(prefix[p], rows[p]);
    }
}
