using Engine.Core.Backend;

namespace Engine.Cpu;

/// <summary>
/// Keys and values of one sequence, one pinned array per layer and kind: <c>[contextLength, kvDim] f32</c>,
/// position-major so a decode step appends one contiguous row and attention walks positions in order.
/// </summary>
internal sealed unsafe class CpuKvCache : KvCache
{
    private readonly float[][] _keys;   // [layers][contextLength * kvDim]
    private readonly float[][] _values; // [layers][contextLength * kvDim]

    public CpuKvCache(int layers, int contextLength, int kvDim) : base(layers, contextLength, kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kvDim, 1);
        int perLayer = checked(contextLength * kvDim);
        _keys = new float[layers][];
        _values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = GC.AllocateArray<float>(perLayer, pinned: true);
            _values[l] = GC.AllocateArray<float>(perLayer, pinned: true);
        }
    }

    /// <summary>Keys of <paramref name="layer"/>, <c>[contextLength, kvDim]</c>.</summary>
    public float* Keys(int layer) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _keys[CheckLayer(layer)][0]);

    /// <summary>Values of <paramref name="layer"/>, <c>[contextLength, kvDim]</c>.</summary>
    public float* Values(int layer) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _values[CheckLayer(layer)][0]);

    private int CheckLayer(int layer)
    {
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} outside a cache of {Layers} layers");
        return layer;
    }

    public override void Dispose() { }
}
