using Engine.Core.Backend;
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

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void Split_decode_attention_matches_the_reference_across_chunks(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(41);
        // The two-launch form (FlashDecodeTests: the one-launch form). 32: output quantized for the o-projection; 16: not;
        // 64: wider than the CPU device's group. The 32-lane CPU device (slow: 32 threads per warp) runs only the quantizing
        // case, over three chunks.
        bool slow = device == "cpu32";
        DecodeAttentionSteps.WithSplit(gpu, flash: false, () =>
        {
            foreach (int headDim in slow ? new[] { 32 } : new[] { 32, 16, 64 })
            foreach (int chunk in slow ? new[] { 5 } : new[] { 5, 8 })
                DecodeAttentionSteps.Run(gpu, t, Heads, KvHeads, Context, headDim, chunk, RopeStyle.NeoX, steps: slow ? 12 : 19, fusedLaunches: 2); // chunks, then the merge
        });
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
            DecodeAttentionSteps.AssertClose(ReadAll(gpu, b), ReadAll(gpu, a), KernelTolerances.Attention, "split vs one group per head at 36");
        }
        finally
        {
            gpu.SplitAttention = split;
            gpu.AttentionChunkLength = chunkLength;
        }
    }
}
