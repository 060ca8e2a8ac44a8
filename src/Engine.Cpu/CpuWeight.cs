using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Tensors;

namespace Engine.Cpu;

/// <summary>
/// A weight wrapped where it lies (the GGUF mapping), never copied: Q8_0 rows are read as 34-byte blocks
/// straight from the file. Only small vectors used elementwise (norm weights, biases) of a non-F32 type are
/// widened once to f32, on first use.
/// </summary>
internal sealed unsafe class CpuWeight : DeviceWeight
{
    private float[]? _vector; // [Cols] f32, pinned; only for non-F32 vectors

    public CpuWeight(TensorView view) : base(view.Name, view.Type, view.Rows, view.Cols)
    {
        if (!GgmlTypeInfo.IsSupported(view.Type))
            throw new NotSupportedException($"tensor '{view.Name}' has type {view.Type}; the CPU backend computes with F32, F16, BF16 and Q8_0");
        if (view.Type == GgmlType.Q8_0 && view.Cols % Core.Quant.BlockQ8_0.Size != 0)
            throw new ArgumentException($"tensor '{view.Name}': Q8_0 rows of {view.Cols} are not a multiple of {Core.Quant.BlockQ8_0.Size}");
        View = view;
        Data = view.Data;
        RowBytes = view.RowBytes;
    }

    public TensorView View { get; }

    /// <summary>First byte of row 0 in the mapping.</summary>
    public byte* Data { get; }

    /// <summary>Bytes per row in the file's type.</summary>
    public long RowBytes { get; }

    /// <summary>Row 0 as f32 (<c>[Cols]</c>): the mapping itself for F32, else a widened copy made once.</summary>
    public float* Vector
    {
        get
        {
            if (Type == GgmlType.F32) return (float*)Data;
            if (_vector is null)
            {
                var v = GC.AllocateArray<float>(Cols, pinned: true);
                RowDecoding.ToFloat(View, 0, v);
                _vector = v;
            }
            return (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _vector[0]);
        }
    }

    public override void Dispose() { }
}
