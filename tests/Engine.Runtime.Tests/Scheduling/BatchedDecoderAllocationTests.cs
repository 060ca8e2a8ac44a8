using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Runtime.Llama;
using Engine.Runtime.Scheduling;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Scheduling;

/// <summary>
/// A batched decode step of several streams allocates nothing after warm-up on the CPU backend: the segments'
/// attention goes through <see cref="IComputeBackend.RopeStoreKvAttentionBatch"/>, which the CPU backend overrides
/// without the default body's per-segment views. Measured on the calling thread.
/// </summary>
public sealed class BatchedDecoderAllocationTests
{
    [RequiresSharedFact]
    public void Batched_decode_steps_allocate_nothing_after_warm_up()
    {
        const int Streams = 6, Steps = 100;
        using var backend = new CpuBackend(threads: 2);
        using var model = LlamaModel.Load(SharedFixtures.PathOf("models", "stories260K.q8_0.gguf"), backend);
        using var decoder = new BatchedDecoder(model, maxRows: Streams, maxLogitRows: Streams, contextLength: Steps + 16);
        var caches = Enumerable.Range(0, Streams).Select(_ => decoder.AllocateCache()).ToArray();
        var segments = new BatchSegment[Streams];
        var tokens = new int[Streams];
        var logits = new float[Streams * decoder.VocabSize];

        void Step(int position)
        {
            for (int s = 0; s < Streams; s++)
            {
                // streams at different positions (s steps apart), one decode row each
                segments[s] = new BatchSegment(caches[s], position + s, s, 1, WantLogits: true);
                tokens[s] = 1 + (position * 7 + s * 13) % (decoder.VocabSize - 1);
            }
            int m = decoder.Step(tokens, segments, logits);
            if (m != Streams) throw new InvalidOperationException($"{m} logits rows for {Streams} streams"); // not Assert.Equal: it allocates
        }

        for (int i = 0; i < 4; i++) Step(i); // warm-up: JIT, lazily sized scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 4; i < Steps; i++) Step(i);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // As the single-stream test: a bound far below one allocation per step (96 steps × 24 bytes), above a one-off.
        Assert.True(allocated <= 2048, $"{Steps - 4} batched steps of {Streams} streams allocated {allocated} bytes");
        foreach (var c in caches) c.Dispose();
    }
}
