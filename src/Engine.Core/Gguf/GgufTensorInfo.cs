namespace Engine.Core.Gguf;

/// <summary>
/// A tensor's entry in the GGUF header. <see cref="Shape"/> lists dimensions fastest-varying first,
/// as ggml does: <c>blk.0.ffn_down.weight [172, 64]</c> is 64 rows of 172 elements.
/// <see cref="Offset"/> is relative to the start of the tensor data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, ulong Offset)
{
    /// <summary>Total number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n *= d;
            return n;
        }
    }

    /// <summary>Elements in one row (<c>Shape[0]</c>).</summary>
    public long RowLength => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>Number of rows (the product of all dims past the first).</summary>
    public long RowCount => RowLength == 0 ? 0 : ElementCount / RowLength;

    /// <summary>Bytes of tensor data.</summary>
    public long ByteSize => GgmlTypeInfo.RowBytes(Type, RowLength) * RowCount;

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {Type}";
}
