using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

public sealed partial class IlgpuBackend
{
    public DeviceWeight LoadWeight(TensorView tensor)
    {
        if (!GgmlTypeInfo.IsSupported(tensor.Type))
            throw new NotSupportedException($"tensor {tensor.Name}: type {tensor.Type} is not supported by the ILGPU backend");
        if (tensor.Type == GgmlType.Q8_0 && tensor.Cols % 32 != 0)
            throw new ArgumentException($"tensor {tensor.Name}: Q8_0 row of {tensor.Cols} is not a multiple of 32");
        return new GpuWeight(this, tensor);
    }

    public DeviceBuffer Allocate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        var buffer = _accelerator.Allocate1D<float>(length);
        buffer.MemSetToZero(_stream);
        return new GpuBuffer(buffer, buffer.View);
    }

    // AllocateKvCache: IlgpuBackend.Batch.cs (every cache is a range of one pooled buffer).

    public void Write(DeviceBuffer dst, ReadOnlySpan<float> src)
    {
        var view = V(dst);
        if (src.Length > view.Length) throw new ArgumentException($"{src.Length} floats do not fit a buffer of {view.Length}", nameof(src));
        if (src.Length == 0) return;
        Forget();
        view.SubView(0, src.Length).CopyFromCPU(_stream, src); // synchronous, after the kernels enqueued before
    }

    public void Read(DeviceBuffer src, Span<float> dst)
    {
        var view = V(src);
        if (dst.Length > view.Length) throw new ArgumentException($"cannot read {dst.Length} floats from a buffer of {view.Length}", nameof(dst));
        if (dst.Length == 0)
        {
            _stream.Synchronize();
            return;
        }
        view.SubView(0, dst.Length).CopyToCPU(_stream, dst); // enqueued after every op of this backend, then waits for the stream
    }

    private static ArrayView<float> V(DeviceBuffer b) =>
        b is GpuBuffer g ? g.View : throw new ArgumentException($"buffer {b.GetType().Name} does not belong to the ILGPU backend");

    private static GpuWeight W(DeviceWeight w) =>
        w is GpuWeight g ? g : throw new ArgumentException($"weight {w.Name} does not belong to the ILGPU backend");

    private static GpuKvCache C(KvCache c) =>
        c is GpuKvCache g ? g : throw new ArgumentException("KV cache does not belong to the ILGPU backend");

    /// <summary>A view of device f32 memory; the root buffer owns it, slices do not.</summary>
    private sealed class GpuBuffer(MemoryBuffer1D<float, Stride1D.Dense>? owner, ArrayView<float> view) : DeviceBuffer((int)view.Length)
    {
        public ArrayView<float> View { get; } = view;

        public override DeviceBuffer Slice(int offset, int length)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)offset + (uint)length, (uint)Length);
            return new GpuBuffer(null, View.SubView(offset, length));
        }

        public override void Dispose() => owner?.Dispose();
    }

    /// <summary>
    /// A weight's file bytes on the device, seen as ushorts (F16/BF16/Q8_0: a Q8_0 block is 17 of them)
    /// and, for F32, as floats. Vectors (one row: norms, biases) also keep an f32 copy for the
    /// element-wise kernels.
    /// </summary>
    private sealed class GpuWeight : DeviceWeight
    {
        private readonly MemoryBuffer1D<ushort, Stride1D.Dense> _raw;
        private readonly MemoryBuffer1D<float, Stride1D.Dense>? _vector;

        public GpuWeight(IlgpuBackend backend, TensorView tensor) : base(tensor.Name, tensor.Type, tensor.Rows, tensor.Cols)
        {
            var bytes = tensor.Bytes;
            _raw = backend._accelerator.Allocate1D<ushort>(bytes.Length / 2);
            ArrayView<ushort> raw = _raw.View;
            raw.CopyFromCPU(MemoryMarshal.Cast<byte, ushort>(bytes));
            U16 = raw;
            F32 = tensor.Type == GgmlType.F32 ? raw.Cast<float>() : backend._dummyFloat;
            TypeCode = (int)tensor.Type;
            if (tensor.Rows == 1)
            {
                var host = new float[tensor.Cols];
                RowDecoding.ToFloat(tensor, 0, host);
                _vector = backend._accelerator.Allocate1D(host);
                Vector = _vector.View;
            }
            else
            {
                Vector = backend._dummyFloat;
            }
        }

        // [rows, rowBytes / 2] ushort: the file's bytes
        public ArrayView<ushort> U16 { get; }
        // [rows, cols] f32 when the type is F32, else a dummy
        public ArrayView<float> F32 { get; }
        // [cols] f32 when Rows == 1, else a dummy
        public ArrayView<float> Vector { get; }
        public int TypeCode { get; }

        public override void Dispose()
        {
            _raw.Dispose();
            _vector?.Dispose();
        }
    }
}
