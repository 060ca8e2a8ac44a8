using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Cpu.Tests;

/// <summary>
/// <see cref="CpuBackendOptions.PrefetchNextChunk"/> changes when weights arrive, not what is computed: a decode-sized
/// batched Q8_0 product (several chunks per worker, fused targets of different heights) is bit-identical with and
/// without it, and within <see cref="Tolerances.Q8MatMul"/> of the reference.
/// </summary>
public sealed class PrefetchTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(2, 16)]
    [InlineData(2, 5)]
    public void Prefetching_the_next_chunk_changes_no_output(int threads, int n)
    {
        if (!CpuBackend.IsAvx2Supported) return; // the dequantized batched kernel runs on the AVX2 path only
        using var h = new BackendPair(CpuKernelPath.Avx2, threads);
        using var off = new CpuBackend(new CpuBackendOptions { Threads = threads, Q8Batch = Q8BatchKernel.DequantizedF32, PrefetchNextChunk = false });
        using var on = new CpuBackend(new CpuBackendOptions { Threads = threads, Q8Batch = Q8BatchKernel.DequantizedF32, PrefetchNextChunk = true });
        const int cols = 128;
        var views = new[] { h.Tensors.Random("a", GgmlType.Q8_0, 301, cols, h.Rng), h.Tensors.Random("b", GgmlType.Q8_0, 67, cols, h.Rng) };
        var x = h.RandomFloats(n * cols, 2f);
        var outs = new List<float[]>();
        foreach (IComputeBackend be in new IComputeBackend[] { on, off, h.Reference })
        {
            using var xb = h.Upload(be, x);
            var ys = views.Select(v => be.Allocate(n * v.Rows)).ToArray();
            var targets = views.Select((v, i) => new MatMulTarget(be.LoadWeight(v), ys[i])).ToArray();
            be.MatMul(xb, n, targets);
            var all = new float[ys.Sum(y => y.Length)];
            int at = 0;
            foreach (var y in ys)
            {
                be.Read(y, all.AsSpan(at, y.Length));
                at += y.Length;
                y.Dispose();
            }
            outs.Add(all);
        }
        Assert.Equal(outs[1], outs[0]);
        double err = Tolerances.NormalizedError(outs[0], outs[2]);
        Assert.True(err <= Tolerances.Q8MatMul, $"n={n}: normalized error {err:E3} ({h.Label})");
    }
}
