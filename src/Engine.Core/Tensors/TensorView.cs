using Engine.Core.Gguf;

namespace Engine.Core.Tensors;

/// <summary>
/// A read-only view of tensor data that lives outside the managed heap (a memory-mapped GGUF file
/// or native memory). Row-major: <see cref="Rows"/> rows of <see cref="Cols"/> elements, each row
/// <see cref="RowBytes"/> bytes in the tensor's own type (Q8_0 rows are blocks of 34 bytes).
/// Valid while its owner (the <see cref="GgufFile"/>) is alive.
/// </summary>
public readonly unsafe struct TensorView
{
    public TensorView(string name, GgmlType type, long[] shape, byte* data)
    {
        Name = name;
        Type = type;
        Shape = shape;
        Data = data;
    }

    public string Name { get; }
    public GgmlType Type { get; }

    /// <summary>Dimensions, fastest-varying first.</summary>
    public long[] Shape { get; }

    /// <summary>Pointer to the first byte of the tensor data.</summary>
    public byte* Data { get; }

    /// <summary>Elements per row (<c>Shape[0]</c>).</summary>
    public int Cols => checked((int)Shape[0]);

    /// <summary>Number of rows (product of the other dims).</summary>
    public int Rows
    {
        get
        {
            long n = 1;
            for (int i = 1; i < Shape.Length; i++) n *= Shape[i];
            return checked((int)n);
        }
    }

    public long RowBytes => GgmlTypeInfo.RowBytes(Type, Cols);

    public long ByteLength => RowBytes * Rows;

    /// <summary>The raw bytes of one row.</summary>
    public ReadOnlySpan<byte> Row(int row) => new(Data + row * RowBytes, checked((int)RowBytes));

    /// <summary>All bytes (tensors under 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes => new(Data, checked((int)ByteLength));

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}] {Type}";
}
