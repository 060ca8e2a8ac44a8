using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;

namespace Engine.Kernels.Testing;

/// <summary>
/// Random weight tensors in native memory (as a mapped GGUF file would hold them), for kernel tests and
/// the GPU benchmark. Values are drawn uniformly in [-scale, scale] from a seeded generator, never zero
/// rows; Q8_0 tensors are quantized with the reference <see cref="Q8_0.QuantizeRow(ReadOnlySpan{float}, Span{byte})"/>.
/// The tensors stay valid until this object is disposed.
/// </summary>
public sealed unsafe class HostTensors : IDisposable
{
    private readonly List<nint> _blocks = new();
    private readonly Random _rng;

    public HostTensors(int seed) => _rng = new Random(seed);

    /// <summary>A new backend buffer holding <paramref name="values"/>.</summary>
    public static DeviceBuffer Upload(IComputeBackend backend, float[] values)
    {
        var buffer = backend.Allocate(values.Length);
        backend.Write(buffer, values);
        return buffer;
    }

    /// <summary>The whole content of a backend buffer, copied to the host.</summary>
    public static float[] ReadAll(IComputeBackend backend, DeviceBuffer buffer)
    {
        var values = new float[buffer.Length];
        backend.Read(buffer, values);
        return values;
    }

    public Random Rng => _rng;

    /// <summary>A <c>[rows, cols]</c> tensor of <paramref name="type"/> (F32, F16, BF16 or Q8_0).</summary>
    public TensorView Create(string name, GgmlType type, int rows, int cols, float scale = 1f)
    {
        long bytes = GgmlTypeInfo.RowBytes(type, cols) * rows;
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        _blocks.Add((nint)data);
        var row = new float[cols];
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++) row[i] = (float)(_rng.NextDouble() * 2 - 1) * scale;
            var dst = new Span<byte>(data + r * rowBytes, (int)rowBytes);
            switch (type)
            {
                case GgmlType.F32: MemoryMarshal.Cast<float, byte>(row).CopyTo(dst); break;
                case GgmlType.F16:
                    var h = MemoryMarshal.Cast<byte, Half>(dst);
                    for (int i = 0; i < cols; i++) h[i] = (Half)row[i];
                    break;
                case GgmlType.BF16:
                    var b = MemoryMarshal.Cast<byte, ushort>(dst);
                    for (int i = 0; i < cols; i++) b[i] = RowDecoding.ToBFloat16(row[i]);
                    break;
                case GgmlType.Q8_0: Q8_0.QuantizeRow(row, dst); break;
                default: throw new NotSupportedException(type.ToString());
            }
        }
        return new TensorView(name, type, rows == 1 ? [cols] : [cols, rows], data);
    }

    /// <summary>
    /// A Q8_0 tensor of random bytes with random positive scales (fast: no quantization), for large benchmark
    /// weights. Scales are about 1 / (74·√cols) (74 = the std of a uniform int8), so rows have weights of
    /// about 1/√cols and activations stay finite through many layers.
    /// </summary>
    public TensorView CreateRandomQ8_0(string name, int rows, int cols)
    {
        long blocks = (long)rows * (cols / 32);
        long bytes = blocks * BlockQ8_0.ByteSize;
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        _blocks.Add((nint)data);
        var span = new Span<byte>(data, checked((int)bytes));
        _rng.NextBytes(span);
        var asBlocks = MemoryMarshal.Cast<byte, BlockQ8_0>(span);
        for (long i = 0; i < blocks; i++) asBlocks[(int)i].D = (Half)((0.5f + (float)_rng.NextDouble()) / (74f * MathF.Sqrt(cols)));
        return new TensorView(name, GgmlType.Q8_0, [cols, rows], data);
    }

    /// <summary>Random floats in [-scale, scale].</summary>
    public float[] Floats(int count, float scale = 1f)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(_rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>‖a − b‖ / ‖b‖ over the first <c>b.Length</c> elements (the tests' normalized error).</summary>
    public static double NormalizedError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < b.Length; i++)
        {
            double d = (double)a[i] - b[i];
            num += d * d;
            den += (double)b[i] * b[i];
        }
        if (den == 0) return num == 0 ? 0 : double.PositiveInfinity;
        return Math.Sqrt(num / den);
    }

    public void Dispose()
    {
        foreach (var p in _blocks) NativeMemory.AlignedFree((void*)p);
        _blocks.Clear();
    }
}
