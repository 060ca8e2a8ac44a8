using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Cpu.Tests;

public sealed class AllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)] // the pool's release and barrier allocate nothing either (counted on the calling thread)
    public void Ops_allocate_nothing_after_warm_up(int threads)
    {
        var rng = new Random(1234);
        using var tensors = new TestTensors();
        using var cpu = new CpuBackend(new CpuBackendOptions { Threads = threads });
        const int dim = 64, hidden = 172, heads = 4, kvHeads = 2, headDim = 16, n = 3;
        var wq = cpu.LoadWeight(tensors.Random("wq", GgmlType.Q8_0, dim, dim, rng));
        var wk = cpu.LoadWeight(tensors.Random("wk", GgmlType.Q8_0, kvHeads * headDim, dim, rng));
        var wf = cpu.LoadWeight(tensors.Random("wf", GgmlType.F16, dim, hidden, rng));
        var norm = cpu.LoadWeight(tensors.Random("norm", GgmlType.F16, 1, dim, rng));
        var table = cpu.LoadWeight(tensors.Random("tok", GgmlType.Q8_0, 10, dim, rng));
        var x = cpu.Allocate(n * hidden);
        var q = cpu.Allocate(n * dim);
        var k = cpu.Allocate(n * kvHeads * headDim);
        var att = cpu.Allocate(n * dim);
        var cache = cpu.AllocateKvCache(1, 16, kvHeads * headDim);
        var src = new float[n * hidden];
        for (int i = 0; i < src.Length; i++) src[i] = (float)rng.NextDouble() - 0.5f;
        cpu.Write(x, src);
        MatMulTarget[] qk = [new(wq, q), new(wk, k)];
        MatMulTarget[] f = [new(wf, att)];
        int[] tokens = [1, 2, 3];
        int[] positions = [4, 5, 6];
        var host = new float[n * dim];

        void Step()
        {
            cpu.Embed(table, tokens, q);
            cpu.RmsNorm(q, norm, q, n, dim, 1e-5f);
            cpu.MatMul(q, n, qk);
            cpu.MatMul(x, n, f);
            cpu.Rope(q, n, heads, headDim, positions, 10000f, RopeStyle.Normal);
            cpu.StoreKv(cache, 0, k, k, n, positions);
            cpu.Attention(cache, 0, q, att, n, positions, heads, kvHeads, headDim);
            cpu.SwiGlu(att, q, att, n * dim);
            cpu.Add(q, att, n * dim);
            cpu.AddBias(q, norm, n);
            cpu.Read(q, host);
        }

        Step(); // warm-up: scratch grows, methods are compiled
        long before = GC.GetAllocatedBytesForCurrentThread();
        Step();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }
}

public sealed class BatchedAttentionAllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Batched_attention_allocates_nothing_after_warm_up(int threads)
    {
        var rng = new Random(99);
        using var cpu = new CpuBackend(new CpuBackendOptions { Threads = threads });
        const int heads = 4, kvHeads = 2, headDim = 16, streams = 5, layers = 2;
        var caches = new KvCache[streams];
        for (int s = 0; s < streams; s++) caches[s] = cpu.AllocateKvCache(layers, 64, kvHeads * headDim);
        int[] offsets = [0, 1, 2, 3, 4], counts = [1, 1, 1, 1, 1];
        var positions = new int[streams];
        var q = cpu.Allocate(streams * heads * headDim);
        var k = cpu.Allocate(streams * kvHeads * headDim);
        var v = cpu.Allocate(streams * kvHeads * headDim);
        var o = cpu.Allocate(streams * heads * headDim);
        var src = new float[streams * heads * headDim];
        for (int i = 0; i < src.Length; i++) src[i] = (float)rng.NextDouble() - 0.5f;

        void Step(int step)
        {
            for (int s = 0; s < streams; s++) positions[s] = step + 3 * s;
            cpu.Write(q, src);
            for (int l = 0; l < layers; l++)
                cpu.RopeStoreKvAttentionBatch(caches, offsets, counts, l, q, k, v, o, positions, heads, kvHeads, headDim, 10000f, RopeStyle.NeoX);
        }

        Step(0);
        Step(1); // warm-up: scratch grows, methods are compiled
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 2; i < 40; i++) Step(i);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
