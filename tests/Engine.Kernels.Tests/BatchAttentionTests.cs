using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// Batched RoPE + KV store + attention over several streams (IlgpuBackend.RopeStoreKvAttentionBatch, three launches for
/// every segment of a step over caches pooled in one device buffer) against the scalar reference run segment by segment,
/// on steps that mix decode rows at different positions, a prefill segment and an empty segment; the per-segment form
/// (BatchedAttention = false) against the same; bad input; and the KV pool keeping caches' contents when it grows.
/// </summary>
[Collection("ilgpu")]
public class BatchAttentionTests
{
    public static TheoryData<string> Devices => Tests.Devices.Names;

    private const int Heads = 4, KvHeads = 2, Layers = 2;

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    /// <summary>A segment of a scripted step: stream, rows and first position.</summary>
    private sealed record Seg(int Stream, int Count, int Position);

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32"), InlineData(Tests.Devices.CudaShaped)]
    public void Batched_attention_over_mixed_segments_matches_the_reference_per_segment(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(51);
        bool batched = gpu.BatchedAttention;
        int chunkLength = gpu.AttentionChunkLength;
        bool slow = device is "cpu32" or Tests.Devices.CudaShaped;
        // Streams with caches of different lengths; decode rows at different positions, a prefill of several rows, an
        // empty segment; then steps where the prefilled stream decodes. Chunks of 5 positions: rows span several chunks.
        int[] contexts = [24, 40, 16];
        Seg[][] steps = device == Tests.Devices.CudaShaped
            // CUDA's shapes (128-thread flash groups on two concurrent multiprocessors): rows 5 and 6 of the prefill and the
            // decode row at 7 span two chunks, so the batched flash merge runs beside single-chunk rows.
            ? [[new(0, 1, 3), new(1, 7, 0)], [new(1, 1, 7), new(0, 1, 4)]]
            : slow
            ? [[new(0, 1, 3), new(1, 4, 0)], [new(1, 1, 4), new(0, 1, 4)]]
            :
            [
                [new(0, 3, 0), new(1, 9, 0), new(2, 1, 0)],        // prefills, one single row
                [new(0, 1, 3), new(2, 1, 1), new(1, 1, 9)],        // decode rows at three positions
                [new(1, 1, 10), new(2, 0, 2), new(0, 6, 4)],       // decode, an empty segment, a prefill chunk
                [new(2, 1, 2), new(0, 1, 10), new(1, 1, 11)],
            ];
        try
        {
            foreach (int headDim in slow ? new[] { 32 } : new[] { 32, 16 })
            foreach (var style in slow ? new[] { RopeStyle.Normal } : new[] { RopeStyle.Normal, RopeStyle.NeoX })
            {
                int kvDim = KvHeads * headDim, width = Heads * headDim;
                var gBatched = contexts.Select(c => gpu.AllocateKvCache(Layers, c, kvDim)).ToArray();
                var gSingle = contexts.Select(c => gpu.AllocateKvCache(Layers, c, kvDim)).ToArray();
                var cCaches = contexts.Select(c => cpu.AllocateKvCache(Layers, c, kvDim)).ToArray();
                try
                {
                    foreach (var step in steps)
                    {
                        int n = step.Sum(s => s.Count);
                        var offsets = new int[step.Length];
                        var positions = new int[n];
                        for (int s = 0, at = 0; s < step.Length; at += step[s].Count, s++)
                        {
                            offsets[s] = at;
                            for (int i = 0; i < step[s].Count; i++) positions[at + i] = step[s].Position + i;
                        }
                        int[] counts = step.Select(s => s.Count).ToArray();
                        foreach (int layer in device == Tests.Devices.CudaShaped ? new[] { 1 } : new[] { 1, 0 })
                        {
                            var q = t.Floats(n * width, 2f);
                            var k = t.Floats(n * kvDim);
                            var v = t.Floats(n * kvDim);
                            string what = $"headDim {headDim} {style} layer {layer} step [{string.Join(" ", step.Select(s => $"{s.Stream}:{s.Count}@{s.Position}"))}]";

                            gpu.AttentionChunkLength = 5;
                            gpu.BatchedAttention = true;
                            using var gq = Upload(gpu, q);
                            using var gk = Upload(gpu, k);
                            using var gv = Upload(gpu, v);
                            using var go = gpu.Allocate(n * width);
                            long launches = gpu.KernelLaunches;
                            gpu.RopeStoreKvAttentionBatch(step.Select(s => gBatched[s.Stream]).ToArray(), offsets, counts, layer, gq, gk, gv, go,
                                positions, Heads, KvHeads, headDim, 10000f, style);
                            // RoPE + store, then flash attention (32-lane warps) or chunks + merge: whatever the segments.
                            Assert.Equal(gpu.UsesFlash(headDim) ? 2 : 3, gpu.KernelLaunches - launches);

                            gpu.BatchedAttention = false;
                            using var gq1 = Upload(gpu, q);
                            using var gk1 = Upload(gpu, k);
                            using var gv1 = Upload(gpu, v);
                            using var go1 = gpu.Allocate(n * width);
                            gpu.RopeStoreKvAttentionBatch(step.Select(s => gSingle[s.Stream]).ToArray(), offsets, counts, layer, gq1, gk1, gv1, go1,
                                positions, Heads, KvHeads, headDim, 10000f, style);

                            // The reference: the interface's RoPE, RoPE, store, attention on each segment's rows.
                            var expected = new float[n * width];
                            for (int s = 0; s < step.Length; s++)
                            {
                                int c = counts[s], at = offsets[s];
                                if (c == 0) continue;
                                var cq = Upload(cpu, q[(at * width)..((at + c) * width)]);
                                var ck = Upload(cpu, k[(at * kvDim)..((at + c) * kvDim)]);
                                var cv = Upload(cpu, v[(at * kvDim)..((at + c) * kvDim)]);
                                var co = cpu.Allocate(c * width);
                                ((IComputeBackend)cpu).RopeStoreKvAttention(cCaches[step[s].Stream], layer, cq, ck, cv, co, c, positions.AsSpan(at, c),
                                    Heads, KvHeads, headDim, 10000f, style);
                                ReadAll(cpu, co).CopyTo(expected, at * width);
                            }
                            AssertClose(ReadAll(gpu, go), expected, KernelTolerances.Rope + KernelTolerances.Attention, "batched " + what);
                            AssertClose(ReadAll(gpu, go1), expected, KernelTolerances.Rope + KernelTolerances.Attention, "per segment " + what);
                        }
                    }
                }
                finally
                {
                    foreach (var c in gBatched.Concat(gSingle)) c.Dispose();
                }
            }
        }
        finally
        {
            gpu.BatchedAttention = batched;
            gpu.AttentionChunkLength = chunkLength;
        }
    }

    [Fact]
    public void Batched_attention_rejects_bad_segments_before_enqueueing_anything()
    {
        var gpu = Tests.Devices.Get("cpu");
        const int headDim = 16, kvDim = KvHeads * headDim, width = Heads * headDim, n = 3;
        using var a = gpu.AllocateKvCache(1, 8, kvDim);
        using var b = gpu.AllocateKvCache(1, 8, kvDim);
        using var q = gpu.Allocate(n * width);
        using var k = gpu.Allocate(n * kvDim);
        using var o = gpu.Allocate(n * width);
        void Run(KvCache[] caches, int[] offsets, int[] counts, int[] positions, int layer = 0) =>
            gpu.RopeStoreKvAttentionBatch(caches, offsets, counts, layer, q, k, k, o, positions, Heads, KvHeads, headDim, 10000f, RopeStyle.Normal);

        long launches = gpu.KernelLaunches;
        Assert.Throws<ArgumentException>(() => Run([a, b], [0, 1], [2, 1], [0, 1, 0]));                 // rows 1 overlap
        Assert.Throws<ArgumentException>(() => Run([a, a], [0, 1], [1, 2], [0, 0, 1]));                 // one cache twice
        Assert.Throws<ArgumentOutOfRangeException>(() => Run([a, b], [0, 1], [1, 2], [0, 7, 8]));       // position 8 of 8
        Assert.Throws<ArgumentOutOfRangeException>(() => Run([a, b], [0, 1], [1, 2], [0, 0, 1], layer: 1));
        Assert.Throws<ArgumentException>(() => Run([a, b], [0, 1], [1], [0, 0, 1]));                    // counts missing
        Assert.Throws<ArgumentException>(() => Run([a, b], [0, 1], [1, 3], [0, 0, 1, 2]));              // 4 rows, buffers of 3
        Assert.Equal(launches, gpu.KernelLaunches);
    }

    [Fact]
    public void Kv_pool_growth_keeps_every_cache_contents_and_reuses_freed_ranges()
    {
        var gpu = Tests.Devices.Get("cpu");
        using var t = new HostTensors(52);
        const int headDim = 16, kvDim = KvHeads * headDim, width = Heads * headDim, filled = 6;
        // A cache with contents, probed through attention at its last position before and after the pool grows.
        using var first = gpu.AllocateKvCache(1, 8, kvDim);
        using var kv = Upload(gpu, t.Floats(filled * kvDim));
        gpu.StoreKv(first, 0, kv, kv, filled, Enumerable.Range(0, filled).ToArray());
        using var q = Upload(gpu, t.Floats(width));
        using var before = gpu.Allocate(width);
        using var after = gpu.Allocate(width);
        gpu.Attention(first, 0, q, before, 1, [filled - 1], Heads, KvHeads, headDim);
        long capacity = gpu.KvPoolCapacity;
        var grown = new List<KvCache>();
        while (gpu.KvPoolCapacity == capacity) grown.Add(gpu.AllocateKvCache(4, 64, kvDim)); // until the pool is replaced
        gpu.Attention(first, 0, q, after, 1, [filled - 1], Heads, KvHeads, headDim);
        Assert.Equal(ReadAll(gpu, before), ReadAll(gpu, after));

        // Freed ranges are reused: disposing and allocating the same shapes does not grow the pool.
        capacity = gpu.KvPoolCapacity;
        foreach (var c in grown) gpu.StoreKv(c, 0, kv, kv, 1, [0]); // dirty every range before freeing it
        foreach (var c in grown) c.Dispose();
        grown.Clear();
        for (int i = 0; i < 3; i++) grown.Add(gpu.AllocateKvCache(4, 64, kvDim));
        Assert.Equal(capacity, gpu.KvPoolCapacity);
        // A reused range starts zeroed: attention at position 0 of a new cache over a zero key and value is zero.
        using var o = gpu.Allocate(width);
        gpu.Attention(grown[0], 0, q, o, 1, [0], Heads, KvHeads, headDim);
        Assert.All(ReadAll(gpu, o), x => Assert.Equal(0f, x));
        foreach (var c in grown) c.Dispose();
    }
}
