using Engine.Runtime.Llama;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Llama;

/// <summary>Greedy decoding of the stories260K fixtures equals llama.cpp's ids (REFERENCE.md).</summary>
public sealed class Stories260KParityTests
{
    /// <summary>Prompt (5) + 200 generated tokens: the declared context (128) is too short, as in llama.cpp's run.</summary>
    private const int ParityContext = 256;

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void F32_greedy_ids_equal_llama_cpp_for_200_tokens(string backend)
    {
        var ids = GreedyIds(backend, Stories260KReference.F32File, Stories260KReference.F32Ids.Length);
        AssertSameIds(Stories260KReference.F32Ids, ids);
    }

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void Q8_0_greedy_ids_equal_llama_cpp_for_200_tokens(string backend)
    {
        var ids = GreedyIds(backend, Stories260KReference.Q8File, Stories260KReference.Q8Ids.Length);
        AssertSameIds(Stories260KReference.Q8Ids, ids);
    }

    /// <summary>Prompt in one batch then one token per step, argmax (first maximum, as llama.cpp's greedy sampler).</summary>
    internal static int[] GreedyIds(string backendName, string file, int count, int maxBatch = LlamaDecoderOptions.DefaultMaxBatch)
    {
        using var backend = TestBackends.Create(backendName);
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", file), backend);
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = ParityContext, MaxBatch = maxBatch });
        var result = new int[count];
        var logits = decoder.Forward(Stories260KReference.PromptIds);
        for (int i = 0; i < count; i++)
        {
            int next = 0;
            for (int t = 1; t < logits.Length; t++) if (logits[t] > logits[next]) next = t;
            result[i] = next;
            if (i + 1 == count) break;
            logits = decoder.Forward(next);
        }
        return result;
    }

    private static void AssertSameIds(int[] expected, int[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"first difference at generated token {i}: expected {expected[i]}, got {actual[i]}");
    }
}
