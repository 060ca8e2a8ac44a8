using Engine.Core.Backend;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

// The encoder (BERT) ops. Their launchers are compiled on first use (a decoder-only run never pays for
// them) and cached; their scratch grows on demand, so only during warm-up.
public sealed partial class IlgpuBackend
{
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _layerNorm;
    private Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>>? _gelu;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, int>? _softmax;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        EncoderAttentionParams>? _encoderAttention;

    private MemoryBuffer1D<float, Stride1D.Dense>? _encoderScores; // [n, heads, maxLength] f32
    private MemoryBuffer1D<int, Stride1D.Dense>? _sequenceOffsets; // [sequences + 1] int
    private int[] _hostOffsets = new int[8];                       // host copy of the offsets, grown on demand

    public void LayerNorm(DeviceBuffer x, DeviceWeight weight, DeviceWeight bias, DeviceBuffer dst, int n, int dim, float eps)
    {
        var w = W(weight);
        var b = W(bias);
        if (n < 0 || dim <= 0) throw new ArgumentException($"LayerNorm shape [{n}, {dim}] is not a batch of rows");
        if (w.Rows != 1 || w.Cols != dim) throw new ArgumentException($"norm weight {w} does not match dim {dim}", nameof(weight));
        if (b.Rows != 1 || b.Cols != dim) throw new ArgumentException($"norm bias {b} does not match dim {dim}", nameof(bias));
        var xv = V(x);
        var yv = V(dst);
        CheckLength(xv, (long)n * dim, nameof(x));
        CheckLength(yv, (long)n * dim, nameof(dst));
        if (n == 0) return;
        _layerNorm ??= _accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(LayerNormKernel.Kernel);
        Forget();
        Launch();
        _layerNorm(_stream, new KernelConfig(n, _group), xv, w.Vector, b.Vector, yv, dim, eps);
    }

    public void Gelu(DeviceBuffer x, DeviceBuffer dst, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var xv = V(x);
        var dv = V(dst);
        CheckLength(xv, count, nameof(x));
        CheckLength(dv, count, nameof(dst));
        if (count == 0) return;
        _gelu ??= _accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(GeluKernel.Kernel);
        Forget();
        Launch();
        _gelu(_stream, count, xv, dv);
    }

    public void Softmax(DeviceBuffer x, int n, int dim)
    {
        if (n < 0 || dim <= 0) throw new ArgumentException($"softmax shape [{n}, {dim}] is not a batch of rows");
        var xv = V(x);
        CheckLength(xv, (long)n * dim, nameof(x));
        if (n == 0) return;
        _softmax ??= _accelerator.LoadKernel<ArrayView<float>, int>(SoftmaxKernel.Kernel);
        Forget();
        Launch();
        _softmax(_stream, new KernelConfig(n, _group), xv, dim);
    }

    public void EncoderAttention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output,
                                 ReadOnlySpan<int> sequenceLengths, int heads, int headDim, float scale)
    {
        if (heads <= 0 || headDim <= 0) throw new ArgumentException($"{heads} heads of {headDim} is not an attention shape", nameof(heads));
        int sequences = sequenceLengths.Length;
        if (_hostOffsets.Length < sequences + 1) _hostOffsets = new int[Math.Max(sequences + 1, 2 * _hostOffsets.Length)];
        long total = 0;
        int maxLen = 0;
        for (int s = 0; s < sequences; s++)
        {
            int len = sequenceLengths[s];
            if (len < 0) throw new ArgumentException($"sequence length {len} is negative", nameof(sequenceLengths));
            if (total > int.MaxValue - len) throw new ArgumentException("the sequences hold more than int.MaxValue rows", nameof(sequenceLengths));
            _hostOffsets[s] = (int)total;
            total += len;
            maxLen = Math.Max(maxLen, len);
        }
        int n = (int)total;
        _hostOffsets[sequences] = n;
        long width = (long)heads * headDim;
        var qv = V(q);
        var kv = V(k);
        var vv = V(v);
        var ov = V(output);
        CheckLength(qv, n * width, nameof(q));
        CheckLength(kv, n * width, nameof(k));
        CheckLength(vv, n * width, nameof(v));
        CheckLength(ov, n * width, nameof(output));
        if (n == 0) return;

        _encoderAttention ??= _accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, EncoderAttentionParams>(EncoderAttentionKernel.Kernel);
        var scores = Scratch(ref _encoderScores, (long)n * heads * maxLen);
        var offsets = Scratch(ref _sequenceOffsets, sequences + 1);
        offsets.CopyFromCPU(_stream, (ReadOnlySpan<int>)_hostOffsets.AsSpan(0, sequences + 1));
        var p = new EncoderAttentionParams { N = n, Heads = heads, HeadDim = headDim, Sequences = sequences, MaxLength = maxLen, Scale = scale };
        Forget();
        Launch();
        _encoderAttention(_stream, Config2D(n, heads, Math.Min(128, _group)), qv, kv, vv, scores, ov, offsets, p);
    }

    /// <summary>Frees the encoder ops' scratch (called from <see cref="Dispose"/>).</summary>
    private void DisposeEncoder()
    {
        _encoderScores?.Dispose();
        _sequenceOffsets?.Dispose();
    }
}
