using Engine.Runtime.Llama;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Llama;

public sealed class LlamaDecoderTests
{
    /// <summary>
    /// Normalized error ||a-b||/||b|| allowed between logits computed in a batch and one token at a time.
    /// The reference computes each row alone, so it agrees exactly; 1e-5 leaves room for backends whose
    /// batched kernels sum in another order (f32 rounding over dim 64/172).
    /// </summary>
    private const double BatchedVsSteppedTolerance = 1e-5;

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void Chunked_prefill_gives_the_same_greedy_ids_as_one_batch(string backend)
    {
        var oneBatch = Stories260KParityTests.GreedyIds(backend, Stories260KReference.F32File, 40);
        var chunks = Stories260KParityTests.GreedyIds(backend, Stories260KReference.F32File, 40, maxBatch: 2);
        Assert.Equal(oneBatch, chunks);
        Assert.Equal(Stories260KReference.F32Ids[..40], chunks);
    }

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void All_logits_of_a_batch_equal_the_logits_of_one_token_at_a_time(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", Stories260KReference.Q8File), backend);
        int vocab = model.Config.VocabSize;
        int[] tokens = [.. Stories260KReference.PromptIds, .. Stories260KReference.Q8Ids[..11]]; // 16 tokens
        using var batched = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 32, MaxBatch = 8, AllLogits = true });
        var all = new float[tokens.Length * vocab];
        batched.Forward(tokens, all);
        Assert.Equal(tokens.Length, batched.Position);
        Assert.Equal(all.AsSpan((tokens.Length - 1) * vocab), batched.LastLogits);

        using var stepped = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 32 });
        for (int i = 0; i < tokens.Length; i++)
        {
            var logits = stepped.Forward(tokens[i]);
            double err = NormalizedError(all.AsSpan(i * vocab, vocab), logits);
            Assert.True(err <= BatchedVsSteppedTolerance, $"position {i}: normalized error {err:E2} > {BatchedVsSteppedTolerance:E0}");
        }
    }

    [RequiresSharedFact]
    public void Running_past_the_context_is_a_clear_error_and_rewind_reuses_positions()
    {
        using var backend = TestBackends.Create("reference");
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", Stories260KReference.F32File), backend);
        using var decoder = model.CreateDecoder(new LlamaDecoderOptions { ContextLength = 6 });
        var first = decoder.Forward(Stories260KReference.PromptIds).ToArray();
        decoder.Forward(432);
        var e = Assert.Throws<ContextFullException>(() => decoder.Forward(383));
        Assert.Contains("context of 6", e.Message);

        decoder.Rewind(4);
        var again = decoder.Forward(Stories260KReference.PromptIds[4]);
        Assert.Equal(first, again.ToArray());
        Assert.Throws<InvalidOperationException>(() => decoder.Forward([1, 2], new float[2 * model.Config.VocabSize]));
    }

    [RequiresSharedFact]
    public void Declared_context_is_the_default_and_the_output_head_is_the_files_own()
    {
        using var backend = TestBackends.Create("reference");
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", Stories260KReference.F32File), backend);
        using var decoder = model.CreateDecoder();
        Assert.Equal(128, decoder.ContextLength);
        Assert.False(model.Weights.OutputTied); // the fixture carries output.weight
        Assert.Equal([2], model.EndOfGenerationIds);
    }

    internal static double NormalizedError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < b.Length; i++)
        {
            double d = a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return Math.Sqrt(num / den);
    }
}
