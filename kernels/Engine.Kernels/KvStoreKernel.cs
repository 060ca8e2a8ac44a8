using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// Stores rows of <c>k, v [n, kvDim]</c> into one layer of the cache at their positions, one thread per
/// element. Cache layout: <c>[layers, contextLength, kvDim]</c> f32 for keys and the same for values.
/// </summary>
public static class KvStoreKernel
{
    /// <param name="position0">position of row 0 when n is 1; negative: read <c>positions[0]</c> (graph replay)</param>
    /// <param name="layerBase">layer * contextLength * kvDim</param>
    public static void Kernel(Index1D idx, ArrayView<float> k, ArrayView<float> v, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> positions, int position0, int n, int kvDim, long layerBase)
    {
        int r = idx / kvDim;
        int i = idx % kvDim;
        int pos = n == 1 && position0 >= 0 ? position0 : positions[r];
        long dst = layerBase + (long)pos * kvDim + i;
        keys[dst] = k[idx];
        values[dst] = v[idx];
    }
}
