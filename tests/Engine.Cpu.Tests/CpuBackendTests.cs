using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;

namespace Engine.Cpu.Tests;

/// <summary>
/// The harness: every op of <see cref="CpuBackend"/>, on every kernel path (AVX2 where supported, Vector256,
/// scalar) and with 1 and 2 threads, against <see cref="ReferenceBackend"/> on fresh random inputs, with a
/// named tolerance per op (<see cref="Tolerances"/>). The seed is printed on failure; set ENGINE_TEST_SEED to replay.
/// </summary>
public sealed class CpuBackendTests
{
    public static TheoryData<CpuKernelPath, int> Configurations()
    {
        var data = new TheoryData<CpuKernelPath, int>();
        foreach (var path in new[] { CpuKernelPath.Avx2, CpuKernelPath.Vector256, CpuKernelPath.Scalar })
        {
            if (path == CpuKernelPath.Avx2 && !CpuBackend.IsAvx2Supported) continue;
            data.Add(path, 1);
            data.Add(path, 2);
        }
        return data;
    }

    [Theory, MemberData(nameof(Configurations))]
    public void MatMul_q8_0_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        // (rows, cols): a small product that runs on the caller, and one large enough to go through the
        // pool, with row counts that are neither multiples of the thread count nor of the 4-row kernel.
        foreach (var (rows, cols) in new[] { (67, 64), (301, 256) })
            foreach (int n in new[] { 1, 5 })
            {
                var ws = new[]
                {
                    h.Tensors.Random("a", GgmlType.Q8_0, rows, cols, h.Rng),
                    h.Tensors.Random("b", GgmlType.Q8_0, rows / 2 + 3, cols, h.Rng, 0.01f),
                    h.Tensors.Random("c", GgmlType.Q8_0, 7, cols, h.Rng, 30f),
                };
                h.CompareMatMul($"q8_0 {rows}x{cols} n={n}", ws, n, cols, Tolerances.Q8MatMul);
            }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void MatMul_float_weights_match_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
            foreach (var (rows, cols) in new[] { (37, 172), (301, 172), (64, 64) })
                foreach (int n in new[] { 1, 5 })
                {
                    var ws = new[] { h.Tensors.Random("w", type, rows, cols, h.Rng), h.Tensors.Random("w2", type, 5, cols, h.Rng) };
                    h.CompareMatMul($"{type} {rows}x{cols} n={n}", ws, n, cols, Tolerances.FloatMatMul);
                }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void MatMul_mixed_q8_0_and_f32_targets_match_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        var ws = new[]
        {
            h.Tensors.Random("q", GgmlType.Q8_0, 130, 96, h.Rng),
            h.Tensors.Random("f", GgmlType.F32, 130, 96, h.Rng),
            h.Tensors.Random("h", GgmlType.F16, 9, 96, h.Rng),
        };
        // The mixed output mixes tolerances; the Q8_0 bound is the tighter, the f32 one applies to the whole.
        h.CompareMatMul("mixed n=5", ws, 5, 96, Tolerances.FloatMatMul);
    }

    [Theory, MemberData(nameof(Configurations))]
    public void RmsNorm_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        foreach (int dim in new[] { 64, 172 })
            foreach (var type in new[] { GgmlType.F32, GgmlType.F16 })
                foreach (int n in new[] { 1, 5 })
                    foreach (bool inPlace in new[] { false, true })
                    {
                        var w = h.Tensors.Random("norm", type, 1, dim, h.Rng);
                        var x = h.RandomFloats(n * dim, 3f);
                        h.CompareUnary($"rmsnorm {type} dim={dim} n={n} inPlace={inPlace}", x, n * dim, Tolerances.Elementwise, (b, xin, dst) =>
                        {
                            var wt = b.LoadWeight(w);
                            b.RmsNorm(xin, wt, inPlace ? xin : dst, n, dim, 1e-5f);
                            return inPlace ? xin : dst;
                        });
                    }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Elementwise_ops_match_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        const int count = 1003; // not a multiple of 8: exercises the scalar tails
        var a = h.RandomFloats(count, 6f);
        var b = h.RandomFloats(count, 2f);
        h.CompareBinary("swiglu", a, b, count, Tolerances.Elementwise, (be, g, u, dst) => { be.SwiGlu(g, u, dst, count); return dst; });
        h.CompareBinary("swiglu in place", a, b, count, Tolerances.Elementwise, (be, g, u, _) => { be.SwiGlu(g, u, g, count); return g; });
        h.CompareBinary("add", a, b, count, Tolerances.Elementwise, (be, x, y, _) => { be.Add(x, y, count); return x; });
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16 })
        {
            var bias = h.Tensors.Random("bias", type, 1, 172, h.Rng);
            var y = h.RandomFloats(5 * 172, 1f);
            h.CompareUnary($"addbias {type}", y, 0, Tolerances.Elementwise, (be, yb, _) => { be.AddBias(yb, be.LoadWeight(bias), 5); return yb; });
        }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Rope_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        foreach (var style in new[] { RopeStyle.Normal, RopeStyle.NeoX })
            foreach (int headDim in new[] { 6, 16, 64 })
                foreach (float freqBase in new[] { 10000f, 1e6f })
                    foreach (int n in new[] { 1, 5 })
                    {
                        const int heads = 3;
                        var x = h.RandomFloats(n * heads * headDim, 2f);
                        var positions = Enumerable.Range(0, n).Select(_ => h.Rng.Next(0, 2048)).ToArray();
                        h.CompareUnary($"rope {style} d={headDim} base={freqBase} n={n}", x, 0, Tolerances.Rope, (be, xb, _) =>
                        {
                            be.Rope(xb, n, heads, headDim, positions, freqBase, style);
                            return xb;
                        });
                    }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Attention_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        // ratio heads/kvHeads 1 and 3; head sizes below and above one vector; a prompt, then a decode step,
        // then a late batch deep enough in the context to run through the pool.
        foreach (var (heads, kvHeads, headDim) in new[] { (4, 4, 16), (6, 2, 32), (3, 1, 12) })
        {
            const int layers = 2, context = 48;
            int kvDim = kvHeads * headDim;
            var caches = (h.Cpu.AllocateKvCache(layers, context, kvDim), h.Reference.AllocateKvCache(layers, context, kvDim));
            foreach (var (start, n) in new[] { (0, 5), (5, 1), (6, 24), (30, 5) })
            {
                var positions = Enumerable.Range(start, n).ToArray();
                var k = h.RandomFloats(n * kvDim, 1f);
                var v = h.RandomFloats(n * kvDim, 1f);
                var q = h.RandomFloats(n * heads * headDim, 3f);
                var outs = new float[2][];
                int i = 0;
                foreach (var (be, cache) in new (IComputeBackend, KvCache)[] { (h.Cpu, caches.Item1), (h.Reference, caches.Item2) })
                {
                    using var kb = h.Upload(be, k);
                    using var vb = h.Upload(be, v);
                    using var qb = h.Upload(be, q);
                    using var ob = be.Allocate(q.Length);
                    be.StoreKv(cache, 1, kb, vb, n, positions);
                    be.Attention(cache, 1, qb, ob, n, positions, heads, kvHeads, headDim);
                    outs[i] = new float[q.Length];
                    be.Read(ob, outs[i++]);
                }
                h.Check($"attention heads={heads} kv={kvHeads} d={headDim} start={start} n={n}", outs[0], outs[1], Tolerances.Attention);
            }
        }
    }

    [Theory, MemberData(nameof(Configurations))]
    public void Embed_matches_reference(CpuKernelPath path, int threads)
    {
        using var h = new Harness(path, threads);
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.F16, GgmlType.F32 })
        {
            var table = h.Tensors.Random("tok", type, 50, 64, h.Rng);
            int[] tokens = [3, 49, 0, 3, 17];
            var outs = new float[2][];
            int i = 0;
            foreach (IComputeBackend be in new IComputeBackend[] { h.Cpu, h.Reference })
            {
                using var dst = be.Allocate(tokens.Length * 64);
                be.Embed(be.LoadWeight(table), tokens, dst);
                outs[i] = new float[tokens.Length * 64];
                be.Read(dst, outs[i++]);
            }
            Assert.Equal(outs[1], outs[0]); // plain decoding on both sides: equal
        }
        using var d2 = h.Cpu.Allocate(64);
        var t = h.Cpu.LoadWeight(h.Tensors.Random("tok", GgmlType.F32, 5, 64, h.Rng));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Cpu.Embed(t, [5], d2));
    }

    /// <summary>The backend pair with the comparisons these tests share.</summary>
    private sealed class Harness(CpuKernelPath path, int threads) : BackendPair(path, threads)
    {
        public void Check(string op, float[] actual, float[] expected, double tolerance)
        {
            double err = Tolerances.NormalizedError(actual, expected);
            Assert.True(err <= tolerance, $"{op}: normalized error {err:E3} above {tolerance:E1} ({Label})");
        }

        public void CompareMatMul(string op, Core.Tensors.TensorView[] weights, int n, int cols, double tolerance)
        {
            var x = RandomFloats(n * cols, 2f);
            var results = new List<float>[2];
            int i = 0;
            foreach (IComputeBackend be in new IComputeBackend[] { Cpu, Reference })
            {
                using var xb = Upload(be, x);
                var targets = weights.Select(w => new MatMulTarget(be.LoadWeight(w), be.Allocate(n * w.Rows))).ToArray();
                be.MatMul(xb, n, targets);
                results[i] = [];
                foreach (var t in targets)
                {
                    var y = new float[t.Output.Length];
                    be.Read(t.Output, y);
                    results[i].AddRange(y);
                }
                i++;
            }
            Check(op, results[0].ToArray(), results[1].ToArray(), tolerance);
        }

        /// <summary>Runs <paramref name="op"/> on a copy of <paramref name="x"/> (and a zeroed dst of dstLength) on both backends.</summary>
        public void CompareUnary(string op, float[] x, int dstLength, double tolerance, Func<IComputeBackend, DeviceBuffer, DeviceBuffer, DeviceBuffer> run)
        {
            var outs = new float[2][];
            int i = 0;
            foreach (IComputeBackend be in new IComputeBackend[] { Cpu, Reference })
            {
                using var xb = Upload(be, x);
                using var dst = be.Allocate(Math.Max(dstLength, 1));
                var result = run(be, xb, dst);
                outs[i] = new float[result.Length];
                be.Read(result, outs[i++]);
            }
            Check(op, outs[0], outs[1], tolerance);
        }

        public void CompareBinary(string op, float[] a, float[] b, int count, double tolerance, Func<IComputeBackend, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer> run)
        {
            var outs = new float[2][];
            int i = 0;
            foreach (IComputeBackend be in new IComputeBackend[] { Cpu, Reference })
            {
                using var ab = Upload(be, a);
                using var bb = Upload(be, b);
                using var dst = be.Allocate(count);
                var result = run(be, ab, bb, dst);
                outs[i] = new float[count];
                be.Read(result, outs[i++]);
            }
            Check(op, outs[0], outs[1], tolerance);
        }
    }
}
