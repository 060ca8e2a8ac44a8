using Engine.Core.Backend;

namespace Engine.Cpu;

/// <summary>
/// f32 activations in a pinned managed array (pinned object heap), 64-byte aligned, so kernels and worker
/// threads use raw pointers while the GC still owns the memory: a slice keeps its parent's array alive.
/// </summary>
internal sealed unsafe class CpuBuffer : DeviceBuffer
{
    private const int AlignFloats = 16; // 64 bytes: one cache line, two AVX2 vectors

    private readonly float[] _storage;

    private CpuBuffer(float[] storage, float* ptr, int length) : base(length)
    {
        _storage = storage;
        Ptr = ptr;
    }

    /// <summary>First element.</summary>
    public float* Ptr { get; }

    public Span<float> Span => new(Ptr, Length);

    /// <summary>A zeroed buffer of <paramref name="length"/> floats.</summary>
    public static CpuBuffer Create(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var storage = GC.AllocateArray<float>(length + AlignFloats, pinned: true);
        float* p = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref storage[0]);
        nint misalign = (nint)p & (AlignFloats * sizeof(float) - 1);
        if (misalign != 0) p += (AlignFloats * sizeof(float) - misalign) / sizeof(float);
        return new CpuBuffer(storage, p, length);
    }

    public override DeviceBuffer Slice(int offset, int length)
    {
        if ((uint)offset > (uint)Length || (uint)length > (uint)(Length - offset))
            throw new ArgumentOutOfRangeException(nameof(length), $"slice [{offset}, {offset}+{length}) outside a buffer of {Length}");
        return new CpuBuffer(_storage, Ptr + offset, length);
    }

    public override void Dispose() { }
}
