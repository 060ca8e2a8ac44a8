using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Cpu.Kernels;

namespace Engine.Cpu.Tests;

/// <summary>
/// The batched Q8_0 tile kernels called directly (no chunking or threading in between) against the scalar dot
/// (<see cref="Q8_0Kernels.ScalarRow"/>, bit-identical to the reference's loop) on fresh random blocks: weight bytes over
/// the whole int8 range (−128 included, which the quantizer never writes but a GGUF file may hold), activations from
/// the activation quantizer. Shapes leave partial activation groups (n not a multiple of 4), partial weight-row tiles
/// (odd row counts), a chunk that starts past row 0, and one- to many-block rows. Every variant this machine supports
/// runs; the others are skipped by omission (Int16Avx512 needs AVX-512 F/BW/VL).
/// </summary>
public sealed unsafe class Q8TileKernelTests
{
    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string>();
        if (Q8_0TileKernels.IsSupported) data.Add(nameof(Q8BatchKernel.Int8Avx2));
        if (Q8_0DequantizedTileKernels.IsSupported) data.Add(nameof(Q8BatchKernel.DequantizedF32));
        if (Q8_0Avx512TileKernels.IsSupported) data.Add(nameof(Q8BatchKernel.Int16Avx512));
        return data;
    }

    [Theory, MemberData(nameof(Kernels))]
    public void Tile_kernel_matches_scalar_dot(string kernel)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_TEST_SEED"), out int s) ? s : Random.Shared.Next();
        var rng = new Random(seed);
        // (rows, cols, n, r0): r0 > 0 checks the chunk offset; rows − r0 odd leaves a 1 × 4 tail after the 4 × 4 tiles
        foreach (var (rows, cols, n, r0) in new[] { (37, 96, 7, 0), (64, 384, 16, 5), (9, 32, 1, 2), (21, 1536, 13, 3), (8, 64, 4, 0) })
        {
            long rowBytes = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, cols);
            int nb = cols / BlockQ8_0.Size;
            var w = new byte[rowBytes * rows];
            rng.NextBytes(w);
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < nb; b++) // a finite f16 scale per block in [2^-10, 2^-3), either sign
                {
                    var d = (Half)((rng.NextDouble() * 0.124 + 0.001) * (rng.Next(2) == 0 ? -1 : 1));
                    BitConverter.TryWriteBytes(w.AsSpan((int)(r * rowBytes + b * BlockQ8_0.ByteSize), 2), BitConverter.HalfToUInt16Bits(d));
                }
            var x = new float[n * cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * 3f;
            var xq = new sbyte[n * cols];
            var xd = new float[n * nb];
            var expected = new float[n * rows];
            var actual = new float[n * rows];
            long scratchFloats = new[]
            {
                Q8_0TileKernels.ScratchFloats(rows, cols), Q8_0Avx512TileKernels.ScratchFloats(rows, cols), Q8_0DequantizedTileKernels.ScratchFloats(rows, cols),
            }.Max();
            var xf = new float[n * cols];
            var scratch = (float*)NativeMemory.AlignedAlloc((nuint)(scratchFloats * sizeof(float)), 64);
            try
            {
                fixed (byte* pw = w)
                fixed (float* px = x)
                fixed (sbyte* pq = xq)
                fixed (float* pd = xd)
                fixed (float* pe = expected)
                fixed (float* pa = actual)
                fixed (float* pf = xf)
                {
                    for (int j = 0; j < n; j++)
                        Q8_0Kernels.QuantizeRow(CpuKernelPath.Scalar, px + j * cols, cols, pq + j * cols, pd + j * nb);
                    for (int j = 0; j < n; j++)
                        for (int r = r0; r < rows; r++)
                            pe[j * rows + r] = Q8_0Kernels.ScalarRow(pw + r * rowBytes, pq + j * cols, pd + j * nb, nb);
                    switch (Enum.Parse<Q8BatchKernel>(kernel))
                    {
                        case Q8BatchKernel.Int8Avx2:
                            Q8_0TileKernels.MatRows(pw, rowBytes, r0, rows, pq, pd, cols, n, pa, rows, scratch);
                            break;
                        case Q8BatchKernel.Int16Avx512:
                            Q8_0Avx512TileKernels.MatRows(pw, rowBytes, r0, rows, pq, pd, cols, n, pa, rows, scratch);
                            break;
                        default:
                            for (int j = 0; j < n; j++) Q8_0DequantizedTileKernels.DequantizeRow(pq + j * cols, pd + j * nb, pf + j * cols, cols);
                            Q8_0DequantizedTileKernels.MatRows(pw, rowBytes, r0, rows, pf, cols, n, pa, rows, scratch);
                            break;
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(scratch);
            }
            // rows before r0 belong to another chunk: the kernel must leave them alone
            for (int j = 0; j < n; j++)
                for (int r = 0; r < r0; r++) Assert.True(actual[j * rows + r] == 0, $"{kernel}: wrote row {r} outside [{r0}, {rows}) (seed {seed})");
            double err = Tolerances.NormalizedError(actual, expected);
            Assert.True(err <= Tolerances.Q8MatMul, $"{kernel} {rows}x{cols} n={n} r0={r0}: normalized error {err:E3} above {Tolerances.Q8MatMul:E1} (seed {seed})");
        }
    }
}
