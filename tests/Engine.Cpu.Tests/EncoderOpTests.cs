using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Xunit.Abstractions;

namespace Engine.Cpu.Tests;

/// <summary>
/// The encoder ops of <see cref="CpuBackend"/> (LayerNorm, GELU, softmax, encoder attention) on every kernel
/// path and with 1 and 2 threads, against <see cref="ReferenceBackend"/> on fresh random inputs with the bounds of
/// <see cref="EncoderTolerances"/>. The seed is printed on failure; set ENGINE_TEST_SEED to replay.
/// </summary>
public sealed class EncoderOpTests(ITestOutputHelper output)
{
    public static TheoryData<CpuKernelPath, int> Configurations() => CpuBackendTests.Configurations();

    [Theory, MemberData(nameof(Configurations))]
    public void LayerNorm_matches_reference_in_place_and_out_of_place(CpuKernelPath path, int threads)
    {
        using var h = new EncoderHarness(path, threads, output);
        // 37: vector tails; 50 rows of 384 go through the worker pool.
        foreach (var (dim, rowCounts) in new[] { (384, new[] { 1, 5, 50 }), (37, new[] { 1, 5 }) })
            foreach (var type in new[] { GgmlType.F32, GgmlType.F16 })
                foreach (int n in rowCounts)
                    foreach (bool inPlace in new[] { false, true })
                    {
                        var w = h.Tensors.Random("ln.weight", type, 1, dim, h.Rng);
                        var b = h.Tensors.Random("ln.bias", type, 1, dim, h.Rng, 0.5f);
                        // An offset and spread per row, as residual streams have: the mean must really come off.
                        var x = h.RandomFloats(n * dim, 2f);
                        for (int r = 0; r < n; r++)
                            for (int i = 0; i < dim; i++) x[r * dim + i] += 3f * r - 4f;
                        h.Compare($"layernorm {type} dim={dim} n={n} inPlace={inPlace}", EncoderTolerances.LayerNorm, be =>
                        {
                            var xb = h.Upload(be, x);
                            var dst = inPlace ? xb : be.Allocate(n * dim);
                            be.LayerNorm(xb, be.LoadWeight(w), be.LoadWeight(b), dst, n, dim, 1e-12f);
                            return dst;
                        });
                    }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Gelu_matches_reference_in_place_and_out_of_place(CpuKernelPath path, int threads)
    {
        using var h = new EncoderHarness(path, threads, output);
        // 1003: 16- and 8-lane vectors and a scalar tail; 40003 goes through the worker pool in chunks.
        foreach (int count in new[] { 1003, 40003 })
        {
            var x = h.RandomFloats(count, 6f); // both tails: erf near ±1 and the left tail near 0
            foreach (bool inPlace in new[] { false, true })
                h.Compare($"gelu count={count} inPlace={inPlace}", EncoderTolerances.Gelu, be =>
                {
                    var xb = h.Upload(be, x);
                    var dst = inPlace ? xb : be.Allocate(count);
                    be.Gelu(xb, dst, count);
                    return dst;
                });
        }
    }

    [Fact]
    public void Gelu_has_the_exact_erf_values_at_known_points()
    {
        // GELU(x) = x Φ(x); Φ(1) = 0.8413447460685429, Φ(−1) = 0.15865525393145707, Φ(2) = 0.9772498680518208
        // (standard normal CDF, e.g. Abramowitz and Stegun table 26.1).
        var points = new[] { (1f, 0.8413447460685429), (-1f, -0.15865525393145707), (2f, 2 * 0.9772498680518208), (0f, 0.0) };
        foreach (var be in new IComputeBackend[] { new ReferenceBackend(), new CpuBackend(1), new CpuBackend(1, CpuKernelPath.Scalar) })
        {
            using var x = be.Allocate(8);
            be.Write(x, points.Select(p => p.Item1).Concat(Enumerable.Repeat(0f, 4)).ToArray());
            be.Gelu(x, x, 8);
            var y = new float[8];
            be.Read(x, y);
            for (int i = 0; i < points.Length; i++)
                Assert.True(Math.Abs(y[i] - points[i].Item2) < 3e-7, $"{be.Name}: gelu({points[i].Item1}) = {y[i]}, expected {points[i].Item2}");
            be.Dispose();
        }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Softmax_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new EncoderHarness(path, threads, output);
        // 140 rows of 131 go through the worker pool.
        foreach (int dim in new[] { 7, 128, 131 })
            foreach (int n in new[] { 1, 4, 140 })
            {
                var x = h.RandomFloats(n * dim, 10f);
                h.Compare($"softmax dim={dim} n={n}", EncoderTolerances.Softmax, be =>
                {
                    var xb = h.Upload(be, x);
                    be.Softmax(xb, n, dim);
                    return xb;
                });
            }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void EncoderAttention_matches_reference_over_packed_sequences(CpuKernelPath path, int threads)
    {
        using var h = new EncoderHarness(path, threads, output);
        // Sequences of different lengths, one empty, one of a single row; head sizes below, at and above one
        // vector (12 = 8 + a scalar tail, 24 = 16 + 8); lengths that pad to 8 and span blocks of 32 keys; the
        // last two shapes are large enough to run through the worker pool.
        foreach (var (lengths, heads, headDim) in new[]
        {
            (new[] { 5, 1, 17, 0, 9 }, 3, 12),
            (new[] { 3, 8 }, 2, 8),
            (new[] { 40, 33, 7 }, 4, 32),
            (new[] { 70, 2 }, 2, 24),
        })
        {
            int n = lengths.Sum(), width = heads * headDim;
            var q = h.RandomFloats(n * width, 2f);
            var k = h.RandomFloats(n * width, 2f);
            var v = h.RandomFloats(n * width, 1f);
            float scale = 1f / MathF.Sqrt(headDim);
            h.Compare($"encoder attention [{string.Join(",", lengths)}] heads={heads} d={headDim}", EncoderTolerances.EncoderAttention, be =>
            {
                var o = be.Allocate(n * width);
                be.EncoderAttention(h.Upload(be, q), h.Upload(be, k), h.Upload(be, v), o, lengths, heads, headDim, scale);
                return o;
            });
        }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void EncoderAttention_rows_do_not_see_other_sequences(CpuKernelPath path, int threads)
    {
        using var h = new EncoderHarness(path, threads, output);
        int[] lengths = [6, 11, 4];
        const int heads = 2, headDim = 16, width = heads * headDim;
        int n = lengths.Sum();
        var q = h.RandomFloats(n * width, 2f);
        var k = h.RandomFloats(n * width, 2f);
        var v = h.RandomFloats(n * width, 1f);
        var before = Run(k, v);
        // New keys and values for the middle sequence (rows 6..16) only.
        var k2 = (float[])k.Clone();
        var v2 = (float[])v.Clone();
        for (int i = 6 * width; i < 17 * width; i++) { k2[i] = (float)(h.Rng.NextDouble() * 4 - 2); v2[i] = (float)(h.Rng.NextDouble() * 2 - 1); }
        var after = Run(k2, v2);
        Assert.Equal(before.AsSpan(0, 6 * width).ToArray(), after.AsSpan(0, 6 * width).ToArray());
        Assert.Equal(before.AsSpan(17 * width).ToArray(), after.AsSpan(17 * width).ToArray());
        Assert.NotEqual(before.AsSpan(6 * width, 11 * width).ToArray(), after.AsSpan(6 * width, 11 * width).ToArray());

        float[] Run(float[] keys, float[] values)
        {
            using var o = h.Cpu.Allocate(n * width);
            h.Cpu.EncoderAttention(h.Upload(h.Cpu, q), h.Upload(h.Cpu, keys), h.Upload(h.Cpu, values), o, lengths, heads, headDim, 0.25f);
            var result = new float[n * width];
            h.Cpu.Read(o, result);
            return result;
        }
    }

    [Fact]
    public void Encoder_ops_reject_bad_shapes_with_a_message()
    {
        foreach (var be in new IComputeBackend[] { new ReferenceBackend(), new CpuBackend(1) })
        {
            using var b = be.Allocate(64);
            var e = Assert.Throws<ArgumentException>(() => be.EncoderAttention(b, b, b, b, [2, -1], 2, 4, 1f));
            Assert.Contains("negative", e.Message);
            e = Assert.Throws<ArgumentException>(() => be.EncoderAttention(b, b, b, b, [5, 4], 2, 4, 1f)); // 9 rows of 8 > 64
            Assert.Contains("needs", e.Message);
            Assert.Throws<ArgumentException>(() => be.Softmax(b, 3, 32));
            Assert.Throws<ArgumentException>(() => be.Gelu(b, b, 65));
            be.Dispose();
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)] // shapes large enough for the pool: its jobs allocate nothing either (counted on the calling thread)
    public void Encoder_ops_allocate_nothing_after_warm_up(int threads)
    {
        var rng = new Random(4321);
        using var tensors = new TestTensors();
        using var cpu = new CpuBackend(new CpuBackendOptions { Threads = threads });
        const int dim = 384, ff = 1536, heads = 12, headDim = 32;
        int[] lengths = [40, 24];
        int n = lengths.Sum();
        var w = cpu.LoadWeight(tensors.Random("ln.weight", GgmlType.F32, 1, dim, rng));
        var b = cpu.LoadWeight(tensors.Random("ln.bias", GgmlType.F32, 1, dim, rng));
        var x = cpu.Allocate(n * dim);
        var y = cpu.Allocate(n * dim);
        var o = cpu.Allocate(n * dim);
        var h = cpu.Allocate(n * ff);
        var src = new float[n * ff];
        for (int i = 0; i < src.Length; i++) src[i] = (float)rng.NextDouble() - 0.5f;
        cpu.Write(x, src.AsSpan(0, n * dim));
        cpu.Write(h, src);

        void Step()
        {
            cpu.LayerNorm(x, w, b, y, n, dim, 1e-12f);
            cpu.EncoderAttention(y, y, x, o, lengths, heads, headDim, 0.17f);
            cpu.Gelu(h, h, n * ff);
            cpu.Softmax(h, n, ff);
        }

        Step(); // warm-up: scratch grows, jobs are created, methods are compiled
        long before = GC.GetAllocatedBytesForCurrentThread();
        Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>The backend pair; buffers uploaded through it are disposed with it.</summary>
    private sealed class EncoderHarness(CpuKernelPath path, int threads, ITestOutputHelper output) : BackendPair(path, threads)
    {
        private readonly List<DeviceBuffer> _buffers = [];

        public override DeviceBuffer Upload(IComputeBackend be, float[] data)
        {
            var b = base.Upload(be, data);
            _buffers.Add(b);
            return b;
        }

        /// <summary>Runs <paramref name="run"/> on both backends and checks the buffer it returns.</summary>
        public void Compare(string op, double tolerance, Func<IComputeBackend, DeviceBuffer> run)
        {
            var outs = new float[2][];
            int i = 0;
            foreach (IComputeBackend be in new IComputeBackend[] { Cpu, Reference })
            {
                var result = run(be);
                outs[i] = new float[result.Length];
                be.Read(result, outs[i++]);
            }
            double err = Tolerances.NormalizedError(outs[0], outs[1]);
            output.WriteLine($"{op}: normalized error {err:E2} ({Label})");
            Assert.True(err <= tolerance, $"{op}: normalized error {err:E3} above {tolerance:E1} ({Label})");
        }

        public override void Dispose()
        {
            foreach (var b in _buffers) b.Dispose();
            base.Dispose();
        }
    }
}
