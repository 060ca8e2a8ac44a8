using Engine.Core.Backend;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

// Continuous batching: RoPE + KV store + attention of every stream of a step in three launches
// (BatchAttentionKernel), whatever the number of streams, instead of one or two launches per stream per layer. The
// kernels must address every stream's KV cache, so every cache is a sub-allocation of one pooled device buffer for keys
// and one for values (KvPool); each row of a step finds its cache through a small row table uploaded once per step.
public sealed partial class IlgpuBackend
{
    /// <summary>Environment variable: <c>0</c> makes <see cref="RopeStoreKvAttentionBatch"/> run per segment (A/B runs).</summary>
    public const string BatchedAttentionVariable = "ENGINE_BATCHED_ATTENTION";

    /// <summary>
    /// Whether <see cref="RopeStoreKvAttentionBatch"/> runs every segment of a step in one batched set of launches
    /// (default), or per segment through <see cref="RopeStoreKvAttention"/> (false; <see cref="BatchedAttentionVariable"/>=0).
    /// </summary>
    public bool BatchedAttention { get; set; } = Environment.GetEnvironmentVariable(BatchedAttentionVariable) != "0";

    private KvPool _kvPool = null!;
    private MemoryBuffer1D<float, Stride1D.Dense>? _batchPartials; // [n, heads, chunks, headDim + 2] f32
    private MemoryBuffer1D<int, Stride1D.Dense>? _batchRows;       // [n, RowFields] int: the row table on the device
    private int[] _batchRowsHost = [];                             // what it holds (its first _batchRowsCount ints)
    private int _batchRowsCount = -1;                              // -1: nothing valid uploaded
    private int _batchRowsGeneration = -1;                         // scratch generation of that upload

    private Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<float>, BatchAttentionParams> _batchRopeStore = null!;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        BatchAttentionParams> _batchSplit = null!;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>,
        BatchAttentionParams> _batchCombine = null!;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, BatchAttentionParams> _batchFlash = null!;

    /// <summary>Constructor: the KV pool, the flash-decoding kernel and the batched kernels (compiled at creation, as every other launcher).</summary>
    private void InitBatch()
    {
        _kvPool = new KvPool(this);
        InitFlashDecode(); // IlgpuBackend.Attention.cs
        var a = _accelerator;
        _batchRopeStore = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, BatchAttentionParams>(BatchAttentionKernel.KernelRopeStore);
        _batchSplit = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, BatchAttentionParams>(
            BatchAttentionKernel.KernelSplit);
        _batchCombine = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, BatchAttentionParams>(
            BatchAttentionKernel.KernelCombine);
        _batchFlash = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>,
            ArrayView<int>, ArrayView<int>, ArrayView<float>, BatchAttentionParams>(BatchAttentionKernel.KernelFlash);
    }

    private void DisposeBatch()
    {
        _batchPartials?.Dispose();
        _batchRows?.Dispose();
        _flashCounters?.Dispose();
        _kvPool?.Dispose();
    }

    /// <summary>Floats of the KV pool (keys; values likewise): live caches plus free space.</summary>
    public long KvPoolCapacity => _kvPool.Capacity;

    public KvCache AllocateKvCache(int layers, int contextLength, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(contextLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        return new GpuKvCache(_kvPool, layers, contextLength, kvDim);
    }

    /// <summary>
    /// RoPE + KV store + causal attention for several streams in one call (continuous batching): segment s owns rows
    /// <c>[offsets[s], offsets[s] + counts[s])</c> of q <c>[n, heads*headDim]</c>, k, v <c>[n, kvHeads*headDim]</c> and
    /// output <c>[n, heads*headDim]</c>, and <c>caches[s]</c>; positions <c>[n]</c> give each row's position. The same as
    /// <see cref="RopeStoreKvAttention"/> on each segment's rows. Batched (<see cref="BatchedAttention"/>): two launches
    /// for all segments (RoPE + store, then flash attention where <see cref="FlashDecode"/> applies) or three (RoPE + store,
    /// split attention, merge), one upload of a row table when the step's layout
    /// changed (so once per step, not per layer). q and k are rotated in place. Segments may not overlap or share a cache.
    /// </summary>
    public void RopeStoreKvAttentionBatch(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int layer,
        DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, ReadOnlySpan<int> positions,
        int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        // Every check happens before anything is enqueued; n: rows spanned by the segments.
        int n = BatchSegments.Check(caches, offsets, counts, layer, q, k, v, output, positions, heads, kvHeads, headDim);
        int segments = caches.Length;
        if (headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} is odd", nameof(headDim));
        if (headDim > AttentionKernel.MaxHeadDim) throw new ArgumentException($"head dimension {headDim} exceeds {AttentionKernel.MaxHeadDim}", nameof(headDim));
        for (int s = 0; s < segments; s++)
        {
            if (counts[s] == 0) continue;
            C(caches[s]); // this backend's
            for (int o = 0; o < s; o++)
                if (counts[o] > 0 && ReferenceEquals(caches[o], caches[s]))
                    throw new ArgumentException($"segments {o} and {s} share a KV cache", nameof(caches));
        }
        if (n == 0) return;
        int kvDim = kvHeads * headDim;
        var qv = V(q);
        var kv = V(k);
        var vv = V(v);
        var ov = V(output);
        CheckLength(qv, (long)n * heads * headDim, nameof(q));
        CheckLength(kv, (long)n * kvDim, nameof(k));
        CheckLength(vv, (long)n * kvDim, nameof(v));
        CheckLength(ov, (long)n * heads * headDim, nameof(output));

        if (!BatchedAttention)
        {
            for (int s = 0; s < segments; s++)
            {
                int at = offsets[s], count = counts[s];
                if (count == 0) continue;
                // Four small view objects per segment: the per-segment form is the A/B baseline, not the steady-state path.
                using var qs = q.Slice(at * heads * headDim, count * heads * headDim);
                using var ks = k.Slice(at * kvDim, count * kvDim);
                using var vs = v.Slice(at * kvDim, count * kvDim);
                using var os = output.Slice(at * heads * headDim, count * heads * headDim);
                RopeStoreKvAttention(caches[s], layer, qs, ks, vs, os, count, positions.Slice(at, count), heads, kvHeads, headDim, freqBase, style);
            }
            return;
        }

        // The row table: (position, cache base low, cache base high, context length) per row; -1: a row of no segment.
        int fields = BatchAttentionKernel.RowFields;
        int maxLength = 1, maxContext = 1;
        if (_batchRowsHost.Length < n * fields) _batchRowsHost = new int[Math.Max(n * fields, 2 * _batchRowsHost.Length)];
        var table = _batchRowsHost.AsSpan(0, n * fields);
        // Compared with the table on the device before overwriting: unchanged (a step's later layers) means no upload.
        Span<int> fresh = n * fields <= 1024 ? stackalloc int[n * fields] : new int[n * fields];
        fresh.Fill(-1);
        for (int s = 0; s < segments; s++)
        {
            var c = C(caches[s]);
            long b = c.Base;
            maxContext = Math.Max(maxContext, c.ContextLength);
            for (int r = offsets[s]; r < offsets[s] + counts[s]; r++)
            {
                fresh[r * fields] = positions[r];
                fresh[r * fields + 1] = (int)(uint)b;
                fresh[r * fields + 2] = (int)(b >> 32);
                fresh[r * fields + 3] = c.ContextLength;
                maxLength = Math.Max(maxLength, positions[r] + 1);
            }
        }
        int chunkLength = AttentionChunkLength > 0 ? AttentionChunkLength : AttentionKernel.ChunkLengthFor(maxContext);
        int chunks = DivUp(maxLength, chunkLength); // the live length: this path is not recorded into graphs
        bool quantize = headDim % 32 == 0;
        long width = (long)n * heads * headDim;
        var partials = Scratch(ref _batchPartials, width / headDim * chunks * (headDim + 2));
        var xq = quantize ? Scratch(ref _xq, width / 4) : _dummyInt;
        var xd = quantize ? Scratch(ref _xd, width / 32) : _dummyFloat;
        var rows = Scratch(ref _batchRows, n * fields);
        if (_batchRowsCount != n * fields || _batchRowsGeneration != _scratchGeneration || !fresh.SequenceEqual(table))
        {
            if (_capturing) throw new CudaGraphException("batched attention uploads its row table: it cannot be recorded into a graph");
            fresh.CopyTo(table);
            rows.CopyFromCPU(_stream, (ReadOnlySpan<int>)table); // synchronous: ordered after the kernels still reading the previous table
            _batchRowsCount = n * fields;
            _batchRowsGeneration = _scratchGeneration;
        }

        var p = new BatchAttentionParams
        {
            N = n, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, KvDim = kvDim, Layer = layer, NeoX = style == RopeStyle.NeoX ? 1 : 0,
            Quantize = quantize ? 1 : 0, Chunks = chunks, ChunkLength = chunkLength, Scale = 1f / MathF.Sqrt(headDim),
        };
        var freq = RopeFrequencies(freqBase, headDim);
        var keys = _kvPool.Keys;
        var values = _kvPool.Values;
        Forget();
        if (Launch())
            _batchRopeStore(_stream, n * (heads + kvHeads) * (headDim / 2), qv, kv, vv, keys, values, rows, freq, p);
        int splitGroup = Math.Min(128, _attentionGroup);
        if (UsesFlash(headDim))
        {
            // One launch for the attention: online softmax per chunk, the last chunk of each (row, head) merges.
            var counters = FlashCounters(n * heads);
            if (Launch())
                _batchFlash(_stream, Config2D(heads, n * chunks, splitGroup), qv, keys, values, partials, counters, ov, rows, xq, xd, p);
        }
        else
        {
            if (Launch())
                _batchSplit(_stream, Config2D(heads, n * chunks, splitGroup), qv, keys, values, partials, rows, p);
            int w = _accelerator.WarpSize;
            if (Launch())
                _batchCombine(_stream, Config2D(heads, n, Math.Min(_attentionGroup, DivUp(headDim, w) * w)), partials, ov, rows, xq, xd, p);
        }
        if (quantize) Remember(output, width);
    }

    /// <summary>
    /// Keys and values of every KV cache of the backend: one device buffer each, of which each cache owns the range
    /// [Base, Base + Length) (first fit over the gaps left by disposed caches). When a cache does not fit, both buffers are
    /// replaced by ones of twice the size (or more) and the live ranges copied to the same offsets, so a cache keeps its base
    /// but its buffer changes: a cache's views are taken from the pool at each use. A move is a scratch change (recorded graphs point at the old buffers).
    /// </summary>
    private sealed class KvPool(IlgpuBackend b) : IDisposable
    {
        /// <summary>Floats a cache's range is rounded up to (256 bytes: every cache starts aligned).</summary>
        private const long Granule = 64;

        private MemoryBuffer1D<float, Stride1D.Dense>? _keys, _values;
        private readonly List<(long Base, long Length, GpuKvCache Owner)> _live = [];  // by base

        public long Capacity => _keys?.Length ?? 0;

        public ArrayView<float> Keys => _keys!.View;
        public ArrayView<float> Values => _values!.View;

        /// <summary>Reserves <paramref name="length"/> floats (zeroed) for <paramref name="owner"/>; returns its base.</summary>
        public long Rent(long length, GpuKvCache owner)
        {
            length = (length + Granule - 1) / Granule * Granule;
            long at = 0;
            int index = 0;
            for (; index < _live.Count; index++)
            {
                if (_live[index].Base - at >= length) break;
                at = _live[index].Base + _live[index].Length;
            }
            if (at + length > Capacity) Grow(Math.Max(2 * Capacity, at + length));
            _live.Insert(index, (at, length, owner));
            _keys!.View.SubView(at, length).MemSetToZero(b._stream);
            _values!.View.SubView(at, length).MemSetToZero(b._stream);
            return at;
        }

        public void Return(GpuKvCache owner)
        {
            int i = _live.FindIndex(e => ReferenceEquals(e.Owner, owner));
            if (i >= 0) _live.RemoveAt(i);
        }

        private void Grow(long capacity)
        {
            b.ScratchChanging();
            var keys = b._accelerator.Allocate1D<float>(capacity);
            var values = b._accelerator.Allocate1D<float>(capacity);
            if (_keys is not null)
            {
                // Live ranges only; the stream orders the copies after every kernel enqueued on the old buffers.
                foreach (var (at, length, _) in _live)
                {
                    _keys.View.SubView(at, length).CopyTo(b._stream, keys.View.SubView(at, length));
                    _values!.View.SubView(at, length).CopyTo(b._stream, values.View.SubView(at, length));
                }
                b._stream.Synchronize(); // before freeing the old buffers
                _keys.Dispose();
                _values!.Dispose();
            }
            _keys = keys;
            _values = values;
        }

        public void Dispose()
        {
            _keys?.Dispose();
            _values?.Dispose();
        }
    }

    /// <summary>
    /// Keys and values as <c>[layers, contextLength, kvDim]</c> f32 on the device: a range of the backend's
    /// <see cref="KvPool"/> (its base is fixed; the pool's buffer may be replaced when it grows, so views are taken at each use).
    /// </summary>
    private sealed class GpuKvCache : KvCache
    {
        private readonly KvPool _pool;
        private readonly long _length;
        private readonly long _base;
        private bool _disposed;

        public GpuKvCache(KvPool pool, int layers, int contextLength, int kvDim) : base(layers, contextLength, kvDim)
        {
            _pool = pool;
            _length = (long)layers * contextLength * kvDim;
            _base = _pool.Rent(_length, this);
        }

        /// <summary>Where this cache starts in the pool (floats).</summary>
        public long Base
        {
            get
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return _base; // fixed: a growing pool copies every range to the same offset
            }
        }

        public ArrayView<float> Keys => _pool.Keys.SubView(Base, _length);
        public ArrayView<float> Values => _pool.Values.SubView(Base, _length);

        public long LayerBase(int layer)
        {
            if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} outside {Layers}");
            return (long)layer * ContextLength * KvDim;
        }

        public override void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _pool.Return(this);
        }
    }
}
