using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// The harness of the split-position decode attention tests (<see cref="SplitAttentionTests"/>: chunks + merge in two
/// launches; <see cref="FlashDecodeTests"/>: one launch): the backend's decode attention form set for a test and restored
/// after it, and decode steps from position 0 on against the scalar reference.
/// </summary>
internal static class DecodeAttentionSteps
{
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    /// <summary>Runs <paramref name="body"/> with split decode attention on, flash as given; restores the form and chunk length after.</summary>
    public static void WithSplit(IlgpuBackend gpu, bool flash, Action body)
    {
        bool split = gpu.SplitAttention, flash0 = gpu.FlashDecode;
        int chunkLength = gpu.AttentionChunkLength;
        try
        {
            gpu.SplitAttention = true;
            gpu.FlashDecode = flash;
            body();
        }
        finally
        {
            gpu.SplitAttention = split;
            gpu.FlashDecode = flash0;
            gpu.AttentionChunkLength = chunkLength;
        }
    }

    /// <summary>
    /// Decode steps at positions 0 .. <paramref name="steps"/> - 1 with chunks of <paramref name="chunk"/> positions, so that
    /// positions cross chunk boundaries several times: every step draws a fresh q, k and v, stores k/v and attends, fused
    /// (RoPE + KV store + attention: <paramref name="fusedLaunches"/> launches) on layer 0 and as a separate store + attention
    /// on layer 1 (q as given), each against the scalar reference on caches that saw the same steps.
    /// </summary>
    public static void Run(IlgpuBackend gpu, HostTensors t, int heads, int kvHeads, int context, int headDim, int chunk, RopeStyle style,
        int steps, int fusedLaunches)
    {
        var cpu = new ReferenceBackend();
        gpu.AttentionChunkLength = chunk;
        int kvDim = kvHeads * headDim, width = heads * headDim;
        using var gCache = gpu.AllocateKvCache(2, context, kvDim);
        var cCache = cpu.AllocateKvCache(2, context, kvDim);
        for (int pos = 0; pos < steps; pos++)
        {
            var q = t.Floats(width, 2f);
            var k = t.Floats(kvDim);
            var v = t.Floats(kvDim);
            int[] positions = [pos];
            using var gq = Upload(gpu, q);
            using var gk = Upload(gpu, k);
            using var gv = Upload(gpu, v);
            using var go = gpu.Allocate(width);
            using var gq1 = Upload(gpu, q);
            using var go1 = gpu.Allocate(width);
            long launches = gpu.KernelLaunches;
            gpu.RopeStoreKvAttention(gCache, 0, gq, gk, gv, go, 1, positions, heads, kvHeads, headDim, 10000f, style);
            Assert.Equal(fusedLaunches, gpu.KernelLaunches - launches);
            gpu.StoreKv(gCache, 1, gk, gv, 1, positions);
            gpu.Attention(gCache, 1, gq1, go1, 1, positions, heads, kvHeads, headDim);

            var (cq, ck, cv) = (Upload(cpu, q), Upload(cpu, k), Upload(cpu, v));
            var co1 = cpu.Allocate(width);
            cpu.StoreKv(cCache, 1, ck, cv, 1, positions);
            cpu.Attention(cCache, 1, Upload(cpu, q), co1, 1, positions, heads, kvHeads, headDim);
            var co = cpu.Allocate(width);
            ((IComputeBackend)cpu).RopeStoreKvAttention(cCache, 0, cq, ck, cv, co, 1, positions, heads, kvHeads, headDim, 10000f, style);
            string what = $"headDim {headDim} chunk {chunk} at {pos}";
            AssertClose(ReadAll(gpu, go), ReadAll(cpu, co), KernelTolerances.Rope + KernelTolerances.Attention, "fused " + what);
            AssertClose(ReadAll(gpu, go1), ReadAll(cpu, co1), KernelTolerances.Attention, "plain " + what);
        }
    }
}
