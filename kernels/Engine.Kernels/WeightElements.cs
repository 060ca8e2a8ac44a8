using ILGPU;

namespace Engine.Kernels;

/// <summary>Element type codes passed to kernels (the ggml numbers of the types we support).</summary>
internal static class WeightTypes
{
    public const int F32 = 0;   // GgmlType.F32
    public const int F16 = 1;   // GgmlType.F16
    public const int Q8_0 = 8;  // GgmlType.Q8_0
    public const int BF16 = 30; // GgmlType.BF16

    /// <summary>ushorts per Q8_0 block: 34 bytes = f16 scale + 32 int8 (ggml-common.h block_q8_0).</summary>
    public const int Q8BlockUShorts = 17;
}

/// <summary>
/// Reads one element of a weight stored as the file's raw bytes. The same bytes are seen through two
/// views: <c>f32</c> (valid when the type is F32) and <c>u16</c> (F16, BF16, and Q8_0, whose 34-byte
/// blocks are 2-byte aligned but not 4-byte aligned, so they are read as 17 ushorts each).
/// </summary>
internal static class WeightElements
{
    public static float Read(ArrayView<float> f32, ArrayView<ushort> u16, int type, long row, int col, int cols)
    {
        if (type == WeightTypes.F32) return f32[row * cols + col];
        if (type == WeightTypes.F16) return Half16.ToFloat(u16[row * cols + col]);
        if (type == WeightTypes.BF16) return Half16.BFloatToFloat(u16[row * cols + col]);
        // Q8_0: block b of the row starts at ushort (row * cols/32 + b) * 17; byte j of its qs is the
        // low (j even) or high (j odd) byte of ushort 1 + j/2 (little endian).
        long block = row * (cols / 32) + col / 32;
        long at = block * WeightTypes.Q8BlockUShorts;
        int j = col & 31;
        int pair = u16[at + 1 + (j >> 1)];
        int q = (j & 1) == 0 ? (sbyte)(pair & 0xff) : (sbyte)(pair >> 8);
        return Half16.ToFloat(u16[at]) * q;
    }
}
