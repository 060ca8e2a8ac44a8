using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.Kernels.Testing;
using Xunit.Abstractions;
using static Engine.Kernels.Testing.HostTensors;

namespace Engine.Kernels.Tests;

/// <summary>
/// The encoder ops of the ILGPU backend (LayerNorm, GELU, softmax, encoder attention) against
/// <see cref="ReferenceBackend"/> on fresh random inputs, with the bounds of <see cref="EncoderKernelTolerances"/>.
/// Tiny shapes: the ILGPU CPU accelerator is about 200× slower than AVX2 code. "cpu32" runs groups of one
/// 32-lane warp (CUDA's warp width); "cuda" joins when a GPU is present.
/// </summary>
[Collection("ilgpu")] // one accelerator, one test at a time
public class EncoderKernelTests(ITestOutputHelper output)
{
    public static TheoryData<string> Devices => Tests.Devices.Names;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_TEST_SEED"), out int s) ? s : Random.Shared.Next();

    private void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double bound, string what)
    {
        double err = NormalizedError(actual, expected);
        output.WriteLine($"{what}: normalized error {err:E2} (seed {Seed})");
        Assert.True(err <= bound, $"{what}: normalized error {err:E3} > {bound:E1} (seed {Seed}; set ENGINE_TEST_SEED to replay)");
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void LayerNorm_matches_reference_in_place_and_out_of_place(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(Seed);
        foreach (int dim in new[] { 48, 37 })
        {
            const int n = 3;
            var w = t.Create("ln.weight", GgmlType.F32, 1, dim);
            var b = t.Create("ln.bias", GgmlType.F32, 1, dim, 0.5f);
            var x = t.Floats(n * dim, 2f);
            for (int r = 0; r < n; r++)
                for (int i = 0; i < dim; i++) x[r * dim + i] += 40f * r - 4f; // rows far off zero: the mean must come off exactly
            using var gw = gpu.LoadWeight(w);
            using var gb = gpu.LoadWeight(b);
            using var gx = Upload(gpu, x);
            using var gy = gpu.Allocate(n * dim);
            var cy = cpu.Allocate(n * dim);
            gpu.LayerNorm(gx, gw, gb, gy, n, dim, 1e-12f);
            cpu.LayerNorm(Upload(cpu, x), cpu.LoadWeight(w), cpu.LoadWeight(b), cy, n, dim, 1e-12f);
            var expected = ReadAll(cpu, cy);
            AssertClose(ReadAll(gpu, gy), expected, EncoderKernelTolerances.LayerNorm, $"{device} layernorm dim={dim} out of place");
            gpu.LayerNorm(gx, gw, gb, gx, n, dim, 1e-12f);
            AssertClose(ReadAll(gpu, gx), expected, EncoderKernelTolerances.LayerNorm, $"{device} layernorm dim={dim} in place");
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Gelu_matches_reference_in_place_and_out_of_place(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(Seed);
        const int count = 101;
        var x = t.Floats(count, 6f); // both tails
        var cx = Upload(cpu, x);
        cpu.Gelu(cx, cx, count);
        var expected = ReadAll(cpu, cx);
        using var gx = Upload(gpu, x);
        using var gy = gpu.Allocate(count);
        gpu.Gelu(gx, gy, count);
        AssertClose(ReadAll(gpu, gy), expected, EncoderKernelTolerances.Gelu, $"{device} gelu out of place");
        gpu.Gelu(gx, gx, count);
        AssertClose(ReadAll(gpu, gx), expected, EncoderKernelTolerances.Gelu, $"{device} gelu in place");
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void Softmax_matches_reference(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(Seed);
        foreach (int dim in new[] { 5, 40 })
        {
            const int n = 3;
            var x = t.Floats(n * dim, 10f);
            var cx = Upload(cpu, x);
            cpu.Softmax(cx, n, dim);
            using var gx = Upload(gpu, x);
            gpu.Softmax(gx, n, dim);
            AssertClose(ReadAll(gpu, gx), ReadAll(cpu, cx), EncoderKernelTolerances.Softmax, $"{device} softmax dim={dim}");
        }
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void EncoderAttention_matches_reference_over_packed_sequences(string device)
    {
        var gpu = Tests.Devices.Get(device);
        var cpu = new ReferenceBackend();
        using var t = new HostTensors(Seed);
        // Different lengths, an empty sequence, a one-row sequence; head size not a power of two. On cpu32
        // (groups of 32) heads of 8 and 16 take the sliced p·v phase, heads of 12 the per-dimension one.
        foreach (var (lengths, heads, headDim) in new[] { (new[] { 5, 1, 0, 7 }, 2, 12), (new[] { 9, 4 }, 3, 8), (new[] { 6, 3 }, 2, 16) })
        {
            int n = lengths.Sum(), width = heads * headDim;
            var q = t.Floats(n * width, 2f);
            var k = t.Floats(n * width, 2f);
            var v = t.Floats(n * width);
            float scale = 1f / MathF.Sqrt(headDim);
            var co = cpu.Allocate(n * width);
            cpu.EncoderAttention(Upload(cpu, q), Upload(cpu, k), Upload(cpu, v), co, lengths, heads, headDim, scale);
            var go = Run(gpu, q, k, v, lengths, heads, headDim, scale);
            AssertClose(go, ReadAll(cpu, co), EncoderKernelTolerances.EncoderAttention, $"{device} encoder attention [{string.Join(",", lengths)}] heads={heads} d={headDim}");
        }
    }

    [Theory, MemberData(nameof(Devices)), InlineData("cpu32")]
    public void EncoderAttention_rows_do_not_see_other_sequences(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var t = new HostTensors(Seed);
        int[] lengths = [4, 6, 3];
        const int heads = 2, headDim = 8, width = heads * headDim;
        int n = lengths.Sum();
        var q = t.Floats(n * width, 2f);
        var k = t.Floats(n * width, 2f);
        var v = t.Floats(n * width);
        var before = Run(gpu, q, k, v, lengths, heads, headDim, 0.3f);
        // New keys and values for the middle sequence (rows 4..9) only.
        var k2 = (float[])k.Clone();
        var v2 = (float[])v.Clone();
        var fresh = t.Floats(2 * 6 * width, 2f);
        for (int i = 0; i < 6 * width; i++) { k2[4 * width + i] = fresh[i]; v2[4 * width + i] = fresh[6 * width + i]; }
        var after = Run(gpu, q, k2, v2, lengths, heads, headDim, 0.3f);
        Assert.Equal(before[..(4 * width)], after[..(4 * width)]);
        Assert.Equal(before[(10 * width)..], after[(10 * width)..]);
        Assert.NotEqual(before[(4 * width)..(10 * width)], after[(4 * width)..(10 * width)]);
    }

    [Theory, MemberData(nameof(Devices))]
    public void Encoder_ops_reject_bad_shapes_with_a_message(string device)
    {
        var gpu = Tests.Devices.Get(device);
        using var b = gpu.Allocate(64);
        var e = Assert.Throws<ArgumentException>(() => gpu.EncoderAttention(b, b, b, b, [2, -1], 2, 4, 1f));
        Assert.Contains("negative", e.Message);
        Assert.Throws<ArgumentException>(() => gpu.EncoderAttention(b, b, b, b, [5, 4], 2, 4, 1f)); // 9 rows of 8 > 64
        Assert.Throws<ArgumentException>(() => gpu.Softmax(b, 3, 32));
        Assert.Throws<ArgumentException>(() => gpu.Gelu(b, b, 65));
    }

    /// <summary>The encoder kernels through ILGPU's PTX backend for sm_90 (see <see cref="PtxCompileTests"/>), no GPU needed.</summary>
    [Theory]
    [InlineData(nameof(LayerNormKernel))]
    [InlineData(nameof(GeluKernel))]
    [InlineData(nameof(SoftmaxKernel))]
    [InlineData(nameof(EncoderAttentionKernel))]
    public void Encoder_kernel_compiles_to_ptx_for_sm_90(string kernelClass) => new PtxCompileTests().Kernel_compiles_to_ptx_for_sm_90(kernelClass);

    private static float[] Run(IlgpuBackend gpu, float[] q, float[] k, float[] v, int[] lengths, int heads, int headDim, float scale)
    {
        using var gq = Upload(gpu, q);
        using var gk = Upload(gpu, k);
        using var gv = Upload(gpu, v);
        using var go = gpu.Allocate(q.Length);
        gpu.EncoderAttention(gq, gk, gv, go, lengths, heads, headDim, scale);
        return ReadAll(gpu, go);
    }
}
