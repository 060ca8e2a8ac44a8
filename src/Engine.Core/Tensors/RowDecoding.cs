using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;

namespace Engine.Core.Tensors;

/// <summary>Scalar conversion of one row of any supported type to f32 (reference path, loaders, tests).</summary>
public static class RowDecoding
{
    /// <summary>Decodes <c>dst.Length</c> elements of type <paramref name="type"/> from <paramref name="src"/>.</summary>
    public static void ToFloat(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(src)[..dst.Length].CopyTo(dst);
                break;
            case GgmlType.F16:
            {
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                break;
            }
            case GgmlType.BF16:
            {
                // bfloat16 is the upper half of an f32 (ggml_bf16_to_fp32).
                var u = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(u[i] << 16);
                break;
            }
            case GgmlType.Q8_0:
                Q8_0.DequantizeRow(src, dst);
                break;
            default:
                throw new NotSupportedException($"tensor type {type} is not supported");
        }
    }

    /// <summary>Decodes row <paramref name="row"/> of a tensor.</summary>
    public static void ToFloat(in TensorView t, int row, Span<float> dst) => ToFloat(t.Type, t.Row(row), dst[..t.Cols]);

    /// <summary>Round-to-nearest-even f32 → bf16 (ggml_fp32_to_bf16; NaN kept quiet).</summary>
    public static ushort ToBFloat16(float f)
    {
        uint u = (uint)BitConverter.SingleToInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}
