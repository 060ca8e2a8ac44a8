using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Core.Quant;

/// <summary>
/// A Q8_0 block exactly as ggml lays it out (ggml-common.h, <c>block_q8_0</c>): an f16 scale
/// <c>d</c>, then 32 signed 8-bit values; the block stands for <c>d * qs[i]</c>. 34 bytes, no padding.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = ByteSize)]
public struct BlockQ8_0
{
    /// <summary>Elements per block (ggml QK8_0).</summary>
    public const int Size = 32;

    /// <summary>Bytes per block: 2 (f16 scale) + 32.</summary>
    public const int ByteSize = 2 + Size;

    /// <summary>Scale, IEEE half precision.</summary>
    public Half D;

    /// <summary>The 32 quantized values.</summary>
    public Values Qs;

    [InlineArray(Size)]
    public struct Values
    {
        private sbyte _element0;
    }
}
