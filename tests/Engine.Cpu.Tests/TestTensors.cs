using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;

namespace Engine.Cpu.Tests;

/// <summary>Owns native memory laid out as GGUF tensor data, so tests build <see cref="TensorView"/>s like a mapped file.</summary>
internal sealed unsafe class TestTensors : IDisposable
{
    private readonly List<nint> _blocks = [];

    public void Dispose()
    {
        foreach (var p in _blocks) NativeMemory.Free((void*)p);
        _blocks.Clear();
    }

    /// <summary>A <c>[rows, cols]</c> tensor of <paramref name="type"/> holding random values (never zero rows).</summary>
    public TensorView Random(string name, GgmlType type, int rows, int cols, Random rng, float scale = 1f)
    {
        var values = new float[(long)rows * cols];
        for (long i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return FromFloats(name, type, rows, cols, values);
    }

    /// <summary>A tensor of <paramref name="type"/> encoding <paramref name="values"/> (<c>[rows, cols]</c> f32) the way a GGUF writer would.</summary>
    public TensorView FromFloats(string name, GgmlType type, int rows, int cols, float[] values)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        byte* data = (byte*)NativeMemory.AllocZeroed((nuint)(rowBytes * rows));
        _blocks.Add((nint)data);
        for (int r = 0; r < rows; r++)
        {
            var src = values.AsSpan(r * cols, cols);
            byte* row = data + r * rowBytes;
            switch (type)
            {
                case GgmlType.F32: src.CopyTo(new Span<float>(row, cols)); break;
                case GgmlType.F16:
                    for (int i = 0; i < cols; i++) ((Half*)row)[i] = (Half)src[i];
                    break;
                case GgmlType.BF16:
                    for (int i = 0; i < cols; i++) ((ushort*)row)[i] = RowDecoding.ToBFloat16(src[i]);
                    break;
                case GgmlType.Q8_0: Q8_0.QuantizeRow(src, new Span<byte>(row, (int)rowBytes)); break;
                default: throw new NotSupportedException(type.ToString());
            }
        }
        return new TensorView(name, type, rows == 1 ? [cols] : [cols, rows], data);
    }
}
