using Engine.Core.Quant;
using Engine.Cpu.Kernels;

namespace Engine.Cpu.Tests;

public sealed unsafe class Q8_0KernelTests
{
    public static TheoryData<CpuKernelPath> Paths() => new() { CpuKernelPath.Vector256, CpuKernelPath.Scalar };

    [Theory, MemberData(nameof(Paths))]
    public void Activation_quantizer_is_bit_identical_to_Q8_0_QuantizeRow(CpuKernelPath path)
    {
        int seed = Random.Shared.Next();
        var rng = new Random(seed);
        const int blocks = 64;
        var x = new float[blocks * BlockQ8_0.Size];
        for (int b = 0; b < blocks; b++)
        {
            // per block a different magnitude, from subnormal-ish to large, and a few special blocks
            float scale = MathF.Pow(10, rng.Next(-6, 6));
            for (int j = 0; j < BlockQ8_0.Size; j++) x[b * 32 + j] = (float)(rng.NextDouble() * 2 - 1) * scale;
        }
        x.AsSpan(0, 32).Clear();                        // all zeros: d = 0, q = 0
        for (int j = 0; j < 32; j++) x[32 + j] = j - 15.5f; // halves: ties after scaling by id
        // exact ties: amax 127 gives d = 1 and id = 1, so x·id = k + 0.5 exactly
        for (int j = 0; j < 32; j++) x[64 + j] = j == 0 ? 127f : (j % 2 == 0 ? 1 : -1) * (j + 0.5f);
        x[96] = 127f; x[97] = 0.49999997f; x[98] = -0.49999997f; x[99] = 2.5f; x[100] = -2.5f; // round-half-up traps

        var expected = new BlockQ8_0[blocks];
        Q8_0.QuantizeRow(x, expected);
        var qs = new sbyte[x.Length];
        var d = new float[blocks];
        fixed (float* px = x)
        fixed (sbyte* pq = qs)
        fixed (float* pd = d)
            Q8_0Kernels.QuantizeRow(path, px, x.Length, pq, pd);

        for (int b = 0; b < blocks; b++)
        {
            Assert.True(BitConverter.HalfToUInt16Bits(expected[b].D) == BitConverter.HalfToUInt16Bits((Half)d[b]), $"block {b}: scale differs (seed {seed})");
            Assert.True((float)expected[b].D == d[b], $"block {b}: stored scale is not the f16 value widened (seed {seed})");
            for (int j = 0; j < 32; j++)
                Assert.True(expected[b].Qs[j] == qs[b * 32 + j], $"block {b} element {j}: {qs[b * 32 + j]} instead of {expected[b].Qs[j]} for x = {x[b * 32 + j]:R} (seed {seed})");
        }
    }

    [Fact]
    public void Half_conversion_is_exact_for_all_65536_values()
    {
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var vec = new float[65536];
        fixed (ushort* pb = bits)
        fixed (float* pv = vec)
            FloatKernels.DecodeRow(Core.Gguf.GgmlType.F16, (byte*)pb, pv, bits.Length);
        for (int i = 0; i < bits.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            uint e = BitConverter.SingleToUInt32Bits(expected);
            Assert.True(float.IsNaN(expected) ? float.IsNaN(vec[i]) : e == BitConverter.SingleToUInt32Bits(vec[i]), $"vector: half 0x{i:x4}");
            float s = HalfConversion.ToSingle((ushort)i);
            Assert.True(float.IsNaN(expected) ? float.IsNaN(s) : e == BitConverter.SingleToUInt32Bits(s), $"scalar: half 0x{i:x4}");
        }
    }

    [Fact]
    public void Scalar_q8_0_dot_equals_reference_bit_for_bit()
    {
        int seed = Random.Shared.Next();
        var rng = new Random(seed);
        const int cols = 256;
        var w = new float[cols];
        var x = new float[cols];
        for (int i = 0; i < cols; i++) { w[i] = (float)rng.NextDouble() * 2 - 1; x[i] = (float)rng.NextDouble() * 8 - 4; }
        var wb = new BlockQ8_0[cols / 32];
        var xb = new BlockQ8_0[cols / 32];
        Q8_0.QuantizeRow(w, wb);
        Q8_0.QuantizeRow(x, xb);
        float expected = Reference.ReferenceBackend.DotQ8_0(wb, xb);
        var qs = new sbyte[cols];
        var d = new float[cols / 32];
        fixed (float* px = x)
        fixed (sbyte* pq = qs)
        fixed (float* pd = d)
        fixed (BlockQ8_0* pw = wb)
        {
            Q8_0Kernels.QuantizeRow(CpuKernelPath.Scalar, px, cols, pq, pd);
            Assert.Equal(expected, Q8_0Kernels.ScalarRow((byte*)pw, pq, pd, cols / 32));
        }
    }
}
