using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// Split-position decode attention (AttentionKernel.SplitKernel + CombineKernel): with chunks of a few positions a
/// small cache spans several chunks, so the merge of partial maxima, sums and weighted values is exercised; checked
/// against the scalar reference at position 0 (one live chunk), at chunk boundaries and mid-chunk, plain and fused
/// (RoPE + KV store), and equal to the one-group-per-head kernel.
/// </summary>
[Collection("ilgpu")]
public class SplitAttentionTests
{
    public static TheoryData<string> Devices => Tests.Devices.Names;

    private const int Heads = 4, KvHeads = 2, Context = 40;

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = NormalizedError(actual, expected);
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1}");
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void Split_decode_attention_matches_the_reference_across_chunks(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(41);
        bool split = gpu.SplitAttention, flash = gpu.FlashDecode;
        int chunkLength = gpu.AttentionChunkLength;
        try
        {
            gpu.SplitAttention = true;
            gpu.FlashDecode = false; // the two-launch form (FlashDecodeTests: the one-launch form)
            // 32: output quantized for the o-projection; 16: not; 64: wider than the CPU device's group. The 32-lane
            // CPU device (slow: 32 threads per warp) runs only the quantizing case, over three chunks.
            bool slow = device == "cpu32";
            foreach (int headDim in slow ? new[] { 32 } : new[] { 32, 16, 64 })
            foreach (int chunk in slow ? new[] { 5 } : new[] { 5, 8 })
            {
                gpu.AttentionChunkLength = chunk;
                int kvDim = KvHeads * headDim, width = Heads * headDim;
                using var gCache = gpu.AllocateKvCache(2, Context, kvDim);
                var cCache = cpu.AllocateKvCache(2, Context, kvDim);
                // Decode steps from position 0 on: every step stores its k/v, then attends (fused on layer 0, the
                // separate store + attention on layer 1); positions cross chunk boundaries several times.
                for (int pos = 0; pos < (slow ? 12 : 19); pos++)
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
                    gpu.RopeStoreKvAttention(gCache, 0, gq, gk, gv, go, 1, positions, Heads, KvHeads, headDim, 10000f, RopeStyle.NeoX);
                    Assert.Equal(2, gpu.KernelLaunches - launches); // chunks, then the merge
                    gpu.StoreKv(gCache, 1, gk, gv, 1, positions);
                    gpu.Attention(gCache, 1, gq1, go1, 1, positions, Heads, KvHeads, headDim);

                    var (cq, ck, cv) = (Upload(cpu, q), Upload(cpu, k), Upload(cpu, v));
                    var co1 = cpu.Allocate(width);
                    cpu.StoreKv(cCache, 1, ck, cv, 1, positions);
                    cpu.Attention(cCache, 1, Upload(cpu, q), co1, 1, positions, Heads, KvHeads, headDim);
                    var co = cpu.Allocate(width);
                    cpu.Rope(cq, 1, Heads, headDim, positions, 10000f, RopeStyle.NeoX);
                    cpu.Rope(ck, 1, KvHeads, headDim, positions, 10000f, RopeStyle.NeoX);
                    cpu.StoreKv(cCache, 0, ck, cv, 1, positions);
                    cpu.Attention(cCache, 0, cq, co, 1, positions, Heads, KvHeads, headDim);
                    string what = $"headDim {headDim} chunk {chunk} at {pos}";
                    AssertClose(ReadAll(gpu, go), ReadAll(cpu, co), KernelTolerances.Rope + KernelTolerances.Attention, "fused " + what);
                    AssertClose(ReadAll(gpu, go1), ReadAll(cpu, co1), KernelTolerances.Attention, "plain " + what);
                }
            }
        }
        finally
        {
            gpu.SplitAttention = split;
            gpu.FlashDecode = flash;
            gpu.AttentionChunkLength = chunkLength;
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Split_and_one_group_per_head_decode_attention_agree(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(42);
        bool split = gpu.SplitAttention;
        int chunkLength = gpu.AttentionChunkLength;
        const int headDim = 32, kvDim = KvHeads * headDim, width = Heads * headDim, filled = 37;
        try
        {
            using var cache = gpu.AllocateKvCache(1, Context, kvDim);
            using var k = Upload(gpu, t.Floats(filled * kvDim));
            using var v = Upload(gpu, t.Floats(filled * kvDim));
            gpu.StoreKv(cache, 0, k, v, filled, Enumerable.Range(0, filled).ToArray());
            var q = t.Floats(width, 2f);
            using var gq = Upload(gpu, q);
            using var a = gpu.Allocate(width);
            using var b = gpu.Allocate(width);
            gpu.SplitAttention = false;
            gpu.Attention(cache, 0, gq, a, 1, [filled - 1], Heads, KvHeads, headDim);
            gpu.SplitAttention = true;
            gpu.AttentionChunkLength = 6;
            gpu.Attention(cache, 0, gq, b, 1, [filled - 1], Heads, KvHeads, headDim);
            AssertClose(ReadAll(gpu, b), ReadAll(gpu, a), KernelTolerances.Attention, "split vs one group per head at 36");
        }
        finally
        {
            gpu.SplitAttention = split;
            gpu.AttentionChunkLength = chunkLength;
        }
    }
}
