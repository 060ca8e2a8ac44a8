using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// Warp and group reductions built from shuffles and a little shared memory. They work for any warp
/// size (32 on CUDA, 4 on ILGPU's default CPU device) and any group size that is a multiple of it.
/// Every thread of the warp (group) must call them; every thread gets the result.
/// </summary>
internal static class Reductions
{
    /// <summary>Largest number of warps in a group we reduce over (1024 threads / 32).</summary>
    private const int MaxWarps = 32;

    public static float WarpSum(float v)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
            v += Warp.ShuffleXor(v, offset);
        return v;
    }

    public static float WarpMax(float v)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
            v = Max(v, Warp.ShuffleXor(v, offset));
        return v;
    }

    public static float GroupSum(float v)
    {
        var partial = SharedMemory.Allocate<float>(MaxWarps);
        float w = WarpSum(v);
        if (Warp.IsFirstLane) partial[Warp.WarpIdx] = w;
        Group.Barrier();
        int warps = Group.DimX / Warp.WarpSize;
        float total = 0;
        for (int i = 0; i < warps; i++) total += partial[i];
        Group.Barrier(); // the next call may overwrite partial[]
        return total;
    }

    public static float GroupMax(float v)
    {
        var partial = SharedMemory.Allocate<float>(MaxWarps);
        float w = WarpMax(v);
        if (Warp.IsFirstLane) partial[Warp.WarpIdx] = w;
        Group.Barrier();
        int warps = Group.DimX / Warp.WarpSize;
        float total = float.NegativeInfinity;
        for (int i = 0; i < warps; i++) total = Max(total, partial[i]);
        Group.Barrier();
        return total;
    }

    /// <summary>NaN-free max without Math calls (inputs are finite or -inf).</summary>
    public static float Max(float a, float b) => a > b ? a : b;

    /// <summary>Dot product of four signed bytes packed in each of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static int Dot4(int a, int b) =>
        ((a << 24) >> 24) * ((b << 24) >> 24)
        + ((a << 16) >> 24) * ((b << 16) >> 24)
        + ((a << 8) >> 24) * ((b << 8) >> 24)
        + (a >> 24) * (b >> 24);
}
