using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Runtime.Llama;
using Engine.Tests.Shared;

namespace Engine.Kernels.Tests;

/// <summary>The real decoder over the ILGPU backend against the same decoder over the scalar reference.</summary>
[Collection("ilgpu")]
public class EndToEndTests
{
    /// <summary>"Once upon a time" with BOS, as tokenized by llama.cpp (shared/models/REFERENCE.md).</summary>
    private static readonly int[] Prompt = [1, 403, 407, 261, 378];

    /// <summary>
    /// 64 greedy tokens on the Q8_0 file (the check); 16 on the F32 file, whose products take the
    /// f32 kernel (the CPU accelerator needs about 40 s for 64 tokens here).
    /// </summary>
    [RequiresSharedTheory]
    [InlineData("stories260K.q8_0.gguf", 64)]
    [InlineData("stories260K.f32.gguf", 16)]
    public void Stories260K_greedy_ids_through_ilgpu_equal_the_reference(string file, int tokens)
    {
        string path = SharedFixtures.PathOf("models", file);
        var expected = Greedy(path, new ReferenceBackend(), tokens);
        var actual = Greedy(path, Devices.Get("cpu"), tokens);
        Assert.Equal(expected, actual);
    }

    internal static int[] Greedy(string path, IComputeBackend backend, int tokens)
    {
        using var model = LlamaModel.Load(path, backend);
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = Prompt.Length + tokens });
        var ids = new int[tokens];
        var logits = decoder.Forward(Prompt);
        for (int i = 0; i < tokens; i++)
        {
            ids[i] = ArgMax(logits);
            if (i + 1 < tokens) logits = decoder.Forward(ids[i]);
        }
        return ids;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
