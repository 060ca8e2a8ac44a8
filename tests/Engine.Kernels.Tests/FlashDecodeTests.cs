using Engine.Core.Backend;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// Flash-decoding attention (AttentionKernel.KernelFlashDecode: one launch, online softmax in registers, the last live
/// chunk of each head merges the others through a per-head counter it resets): against the scalar reference on decode
/// steps from position 0 on with chunks of a few positions (one live chunk, then several; the counters must come back to
/// zero after every launch or a later step's merge is skipped), plain and fused (RoPE + KV store), and against the
/// two-launch split form. It needs row groups of headDim / 4 lanes inside a warp, so it runs on the 32-lane CPU device
/// (and CUDA); ILGPU's default CPU device (2-lane warps) keeps the two-launch form (SplitAttentionTests).
/// </summary>
[Collection("ilgpu")]
public class FlashDecodeTests
{
    public static TheoryData<string> Devices
    {
        get
        {
            // cpu32: 32-thread groups; cudashape: CUDA's 128-thread groups (16 row groups of 8 lanes at headDim 32).
            var data = new TheoryData<string> { "cpu32", Tests.Devices.CudaShaped };
            if (Tests.Devices.CudaPresent) data.Add("cuda");
            return data;
        }
    }

    private const int Heads = 4, KvHeads = 2, Context = 24;

    [Theory, MemberData(nameof(Devices))]
    public void Flash_decode_matches_the_reference_across_chunks_in_one_launch(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(61);
        DecodeAttentionSteps.WithSplit(gpu, flash: true, () =>
        {
            // 32: output quantized lane by lane; 16: not quantized (4-lane row groups); 64: 16-lane row groups. The CUDA-shaped
            // device (slow: every group is 128 OS threads) runs 32 and 64, still up to four live chunks merged per head.
            var cases = new[] { (32, 3, RopeStyle.NeoX), (16, 4, RopeStyle.Normal), (64, 5, RopeStyle.Normal) };
            foreach (var (headDim, chunk, style) in device == Tests.Devices.CudaShaped ? [cases[0], cases[2]] : cases)
            {
                gpu.AttentionChunkLength = chunk;
                Assert.Equal("flash (1 launch)", gpu.DecodeAttentionForm(headDim));
                DecodeAttentionSteps.Run(gpu, t, Heads, KvHeads, Context, headDim, chunk, style, steps: 11, fusedLaunches: 1);
            }
        });
    }

    /// <summary>
    /// The merge under concurrency: on the CUDA-shaped device two simulated multiprocessors each run half of the grid at
    /// once (chunks 0–3 of every head on one, 4–7 on the other), so the chunks of a head count and the last to finish merges
    /// while the others may still be running; a merge that did not wait for every partial (or a counter left non-zero)
    /// gives a wrong output here, which the one-multiprocessor devices, running groups in grid order, cannot show.
    /// </summary>
    [Fact]
    public void Flash_merge_of_chunks_finishing_concurrently_matches_the_reference()
    {
        var gpu = Tests.Devices.Get(Tests.Devices.CudaShaped);
        Assert.Equal(IlgpuDevice.CudaShapedMultiprocessors, gpu.Device.Accelerator.NumMultiprocessors);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(63);
        const int headDim = 32, kvDim = KvHeads * headDim, width = Heads * headDim;
        DecodeAttentionSteps.WithSplit(gpu, flash: true, () =>
        {
            gpu.AttentionChunkLength = 3; // 8 chunks of 3: every one live at the last position
            using var gCache = gpu.AllocateKvCache(1, Context, kvDim);
            var cCache = cpu.AllocateKvCache(1, Context, kvDim);
            var k = t.Floats(Context * kvDim);
            var v = t.Floats(Context * kvDim);
            int[] all = Enumerable.Range(0, Context).ToArray();
            using var gk = Upload(gpu, k);
            using var gv = Upload(gpu, v);
            gpu.StoreKv(gCache, 0, gk, gv, Context, all);
            cpu.StoreKv(cCache, 0, Upload(cpu, k), Upload(cpu, v), Context, all);
            for (int rep = 0; rep < 6; rep++)
            {
                var q = t.Floats(width, 2f);
                using var gq = Upload(gpu, q);
                using var go = gpu.Allocate(width);
                gpu.Attention(gCache, 0, gq, go, 1, [Context - 1], Heads, KvHeads, headDim);
                var co = cpu.Allocate(width);
                cpu.Attention(cCache, 0, Upload(cpu, q), co, 1, [Context - 1], Heads, KvHeads, headDim);
                DecodeAttentionSteps.AssertClose(ReadAll(gpu, go), ReadAll(cpu, co), KernelTolerances.Attention, $"8 live chunks, repetition {rep}");
            }
        });
    }

    [Theory, MemberData(nameof(Devices))]
    public void Flash_and_two_launch_split_decode_attention_agree(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(62);
        const int headDim = 32, kvDim = KvHeads * headDim, width = Heads * headDim, filled = 23;
        DecodeAttentionSteps.WithSplit(gpu, flash: false, () =>
        {
            using var cache = gpu.AllocateKvCache(1, Context, kvDim);
            using var k = Upload(gpu, t.Floats(filled * kvDim));
            using var v = Upload(gpu, t.Floats(filled * kvDim));
            gpu.StoreKv(cache, 0, k, v, filled, Enumerable.Range(0, filled).ToArray());
            using var gq = Upload(gpu, t.Floats(width, 2f));
            using var a = gpu.Allocate(width);
            using var b = gpu.Allocate(width);
            gpu.AttentionChunkLength = 6;
            gpu.Attention(cache, 0, gq, a, 1, [filled - 1], Heads, KvHeads, headDim);
            gpu.FlashDecode = true;
            gpu.Attention(cache, 0, gq, b, 1, [filled - 1], Heads, KvHeads, headDim);
            DecodeAttentionSteps.AssertClose(ReadAll(gpu, b), ReadAll(gpu, a), KernelTolerances.Attention, $"flash vs split + merge at {filled - 1}");
        });
    }
}
