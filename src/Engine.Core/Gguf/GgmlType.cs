namespace Engine.Core.Gguf;

/// <summary>
/// Tensor element types as numbered in ggml (ggml.h, <c>enum ggml_type</c>). The values are the
/// ones written in GGUF files, so they are explicit and must never change.
/// We compute with F32, F16, BF16 and Q8_0; the other values are named so a file that uses them
/// is rejected with the type's name rather than a number.
/// </summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>Block geometry of the tensor types we support.</summary>
public static class GgmlTypeInfo
{
    /// <summary>True for the types this engine reads and computes with.</summary>
    public static bool IsSupported(GgmlType type) =>
        type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0;

    /// <summary>Elements per block: 32 for Q8_0 (ggml-common.h QK8_0), 1 for the float types.</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q8_0 => Quant.BlockQ8_0.Size,
        _ => throw new NotSupportedException($"tensor type {type} is not supported"),
    };

    /// <summary>Bytes per block: 4, 2, 2, and 34 for Q8_0 (f16 scale + 32 int8).</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q8_0 => Quant.BlockQ8_0.ByteSize,
        _ => throw new NotSupportedException($"tensor type {type} is not supported"),
    };

    /// <summary>Bytes taken by one row of <paramref name="elements"/> elements (a multiple of the block size).</summary>
    public static long RowBytes(GgmlType type, long elements) => elements / BlockSize(type) * BlockBytes(type);
}
