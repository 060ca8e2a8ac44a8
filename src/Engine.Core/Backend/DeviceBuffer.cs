namespace Engine.Core.Backend;

/// <summary>
/// A buffer of f32 activations owned by a backend (host memory for the CPU backend, device memory
/// for ILGPU). The runtime never touches its contents directly: it passes buffers to backend ops and
/// copies in and out with <see cref="IComputeBackend.Write"/> / <see cref="IComputeBackend.Read"/>.
/// A slice shares its parent's storage.
/// </summary>
public abstract class DeviceBuffer : IDisposable
{
    protected DeviceBuffer(int length) => Length = length;

    /// <summary>Number of f32 elements.</summary>
    public int Length { get; }

    /// <summary>A view of <paramref name="length"/> elements starting at <paramref name="offset"/>.</summary>
    public abstract DeviceBuffer Slice(int offset, int length);

    public abstract void Dispose();
}

/// <summary>
/// A weight matrix (or vector) uploaded to a backend once, in its GGUF element type: Q8_0 blocks
/// stay Q8_0, F16/BF16/F32 as they are. Shape: <see cref="Rows"/> rows of <see cref="Cols"/>.
/// </summary>
public abstract class DeviceWeight : IDisposable
{
    protected DeviceWeight(string name, Gguf.GgmlType type, int rows, int cols)
    {
        Name = name;
        Type = type;
        Rows = rows;
        Cols = cols;
    }

    public string Name { get; }
    public Gguf.GgmlType Type { get; }
    public int Rows { get; }
    public int Cols { get; }

    public abstract void Dispose();

    public override string ToString() => $"{Name} [{Cols}, {Rows}] {Type}";
}

/// <summary>
/// One sequence's key/value cache: for each layer, <see cref="ContextLength"/> positions of
/// <see cref="KvDim"/> floats (<c>n_kv_heads * head_dim</c>) for keys and the same for values.
/// Layout is the backend's business.
/// </summary>
public abstract class KvCache : IDisposable
{
    protected KvCache(int layers, int contextLength, int kvDim)
    {
        Layers = layers;
        ContextLength = contextLength;
        KvDim = kvDim;
    }

    public int Layers { get; }
    public int ContextLength { get; }
    public int KvDim { get; }

    public abstract void Dispose();
}

/// <summary>One output of a fused matrix product: <c>Output [n, Weight.Rows] = x [n, Weight.Cols] · Weightᵀ</c>.</summary>
public readonly record struct MatMulTarget(DeviceWeight Weight, DeviceBuffer Output);

/// <summary>How RoPE pairs the dimensions of a head.</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (x[2i], x[2i+1]): llama.cpp's LLAMA_ROPE_TYPE_NORM, used by <c>llama</c> files.</summary>
    Normal = 0,

    /// <summary>Halves (x[i], x[i + d/2]): llama.cpp's LLAMA_ROPE_TYPE_NEOX, used by <c>qwen2</c> files.</summary>
    NeoX = 2,
}
