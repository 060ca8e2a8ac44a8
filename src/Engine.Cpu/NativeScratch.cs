using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// A growable, 64-byte aligned native scratch area for one kind of element. Grown only when an op needs
/// more than any earlier call (warm-up), so steady-state ops allocate nothing. Not thread-safe: grown by the
/// calling thread before workers are released.
/// </summary>
internal sealed unsafe class NativeScratch<T> : IDisposable where T : unmanaged
{
    private const nuint Alignment = 64;

    public T* Ptr { get; private set; }

    /// <summary>Elements available at <see cref="Ptr"/>.</summary>
    public long Capacity { get; private set; }

    /// <summary>Makes room for <paramref name="count"/> elements (contents are not kept).</summary>
    public T* Ensure(long count)
    {
        if (count > Capacity)
        {
            if (Ptr is not null) NativeMemory.AlignedFree(Ptr);
            long grown = Math.Max(count, Capacity + Capacity / 2);
            Ptr = (T*)NativeMemory.AlignedAlloc((nuint)(grown * sizeof(T)), Alignment);
            Capacity = grown;
        }
        return Ptr;
    }

    public void Dispose()
    {
        if (Ptr is not null) NativeMemory.AlignedFree(Ptr);
        Ptr = null;
        Capacity = 0;
    }
}
