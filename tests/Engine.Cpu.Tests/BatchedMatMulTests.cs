using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;

namespace Engine.Cpu.Tests;

/// <summary>
/// The batched products (n ≥ 4 activation rows: prompts, encoder batches), which take the register-tiled kernels,
/// against <see cref="ReferenceBackend"/>: every weight type, batch heights that are and are not multiples of the
/// 4-row tile, weight row counts that leave partial tiles and partial chunks, widths with and without a tail past
/// the last vector, on every kernel path with 1 and 2 threads (on the AVX2 path, Q8_0 with every batched kernel the CPU
/// runs). Seeds are printed on failure (ENGINE_TEST_SEED replays).
/// </summary>
public sealed class BatchedMatMulTests
{
    public static TheoryData<CpuKernelPath, int, GgmlType, Q8BatchKernel> Cases()
    {
        var data = new TheoryData<CpuKernelPath, int, GgmlType, Q8BatchKernel>();
        foreach (var path in new[] { CpuKernelPath.Avx2, CpuKernelPath.Vector256, CpuKernelPath.Scalar })
        {
            if (path == CpuKernelPath.Avx2 && !CpuBackend.IsAvx2Supported) continue;
            foreach (int threads in new[] { 1, 2 })
                foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0 })
                    data.Add(path, threads, type, Q8BatchKernel.Auto);
            if (path != CpuKernelPath.Avx2) continue;
            var kernels = new List<Q8BatchKernel> { Q8BatchKernel.Int8Avx2, Q8BatchKernel.DequantizedF32 };
            if (CpuBackend.IsAvx512Supported) kernels.Add(Q8BatchKernel.Int16Avx512);
            foreach (int threads in new[] { 1, 2 })
                foreach (var kernel in kernels)
                    data.Add(path, threads, GgmlType.Q8_0, kernel);
        }
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Batched_product_matches_reference(CpuKernelPath path, int threads, GgmlType type, Q8BatchKernel q8Batch)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_TEST_SEED"), out int s) ? s : Random.Shared.Next();
        var rng = new Random(seed);
        using var cpu = new CpuBackend(new CpuBackendOptions { Threads = threads, Path = path, SpinMicroseconds = 50, Q8Batch = q8Batch });
        if (q8Batch != Q8BatchKernel.Auto) Assert.Equal(q8Batch, cpu.Q8Batch);
        var reference = new ReferenceBackend();
        using var tensors = new TestTensors();
        double tolerance = type == GgmlType.Q8_0 ? Tolerances.Q8MatMul : Tolerances.FloatMatMul;
        // (rows, cols): 150 rows span several 64-row chunks and end in a partial 4-row group; 172 columns leave a
        // tail past the last 8-float vector (not for Q8_0, whose rows are whole 32-blocks).
        var shapes = type == GgmlType.Q8_0 ? new[] { (150, 96), (37, 384) } : new[] { (150, 96), (37, 172) };
        foreach (var (rows, cols) in shapes)
            foreach (int n in new[] { 4, 7, 13, 34 })
            {
                var weights = new[]
                {
                    tensors.Random("a", type, rows, cols, rng),
                    tensors.Random("b", type, 6, cols, rng, 0.05f), // a fused second target smaller than one chunk
                };
                var x = new float[n * cols];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * 2f;
                var actual = Run(cpu, weights, x, n);
                var expected = Run(reference, weights, x, n);
                double err = Tolerances.NormalizedError(actual, expected);
                Assert.True(err <= tolerance, $"{type} {rows}x{cols} n={n}: normalized error {err:E3} above {tolerance:E1} ({cpu.Name} {cpu.Q8Batch} threads={threads} seed={seed})");
            }
    }

    /// <summary>Runs the fused product on <paramref name="be"/> and returns every target's output, concatenated.</summary>
    private static float[] Run(IComputeBackend be, Core.Tensors.TensorView[] weights, float[] x, int n)
    {
        using var xb = be.Allocate(x.Length);
        be.Write(xb, x);
        var targets = weights.Select(w => new MatMulTarget(be.LoadWeight(w), be.Allocate(n * w.Rows))).ToArray();
        be.MatMul(xb, n, targets);
        var all = new List<float>();
        foreach (var t in targets)
        {
            var y = new float[t.Output.Length];
            be.Read(t.Output, y);
            all.AddRange(y);
            t.Output.Dispose();
        }
        return all.ToArray();
    }
}
