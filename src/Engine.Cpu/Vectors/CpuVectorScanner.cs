using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Core.Backend;
using Engine.Cpu.Threading;

namespace Engine.Cpu.Vectors;

/// <summary>
/// The SIMD CPU <see cref="IVectorScanner"/>. Each query is quantized once to int16 (scale = max|q| / 32767),
/// rows stay int8 and are widened in registers (<see cref="Int8DotKernels"/>), so a score is
/// <c>rowScale · queryScale · (exact int32 dot)</c>. Rows are split into chunks of <see cref="ChunkRows"/> that
/// the workers of a persistent <see cref="WorkerPool"/> take from a shared counter; inside a chunk every query
/// of the batch is scored (four at a time, sharing the widened row) while the chunk sits in L2, so memory is
/// read once per batch. Each worker keeps a bounded heap per query; the heaps are merged at the end.
/// <para>
/// Threading: scans on any thread. The pool serves one scan at a time; a scan that finds it busy runs alone
/// on its own calling thread instead of waiting, so concurrent callers still all make progress.
/// </para>
/// </summary>
public sealed unsafe class CpuVectorScanner : IVectorScanner, IDisposable
{
    /// <summary>Rows per work item: 512 × 384 B = 192 KiB, which stays in a 1 MiB L2 while the batch's queries pass over it.</summary>
    public const int ChunkRows = 512;

    private readonly WorkerPool _pool;
    private readonly object _poolGate = new();
    private readonly ScanJob _poolJob;

    /// <summary>A scanner with <paramref name="threads"/> compute threads (the caller included) and the given kernel path.</summary>
    public CpuVectorScanner(int threads = 0, VectorKernelPath path = VectorKernelPath.Auto, int spinMicroseconds = 200)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        Path = Int8DotKernels.Resolve(path);
        Threads = threads;
        _pool = new WorkerPool(threads, spinMicroseconds);
        _poolJob = new ScanJob(threads);
    }

    /// <summary>The kernel family in use (never <see cref="VectorKernelPath.Auto"/>).</summary>
    public VectorKernelPath Path { get; }

    /// <summary>Compute threads of one scan, the caller included.</summary>
    public int Threads { get; }

    /// <inheritdoc/>
    public string Name => Path switch
    {
        VectorKernelPath.Avx512 => "cpu-avx512",
        VectorKernelPath.Avx2 => "cpu-avx2",
        _ => "cpu-scalar",
    };

    /// <inheritdoc/>
    public IVectorStore CreateStore(int dimensions, int capacity) => new Store(this, dimensions, capacity);

    /// <summary>Stops the worker threads; stores created by this scanner must not scan afterwards.</summary>
    public void Dispose() => _pool.Dispose();

    /// <summary>Int16 query quantization: the largest value maps to <paramref name="qmax"/>; returns the scale.</summary>
    internal static float QuantizeQuery(ReadOnlySpan<float> q, Span<short> dst, int qmax)
    {
        float amax = 0;
        foreach (float v in q) amax = MathF.Max(amax, MathF.Abs(v));
        float scale = amax / qmax;
        float inv = scale != 0 ? 1f / scale : 0f;
        for (int j = 0; j < q.Length; j++) dst[j] = (short)MathF.Round(q[j] * inv, MidpointRounding.AwayFromZero);
        dst[q.Length..].Clear();
        return scale;
    }

    private sealed class Store : IVectorStore
    {
        private readonly CpuVectorScanner _scanner;
        private sbyte* _values; // [capacity, stride] int8, zero-padded rows, 64-byte aligned
        private float[] _scales; // [capacity rounded up to 64] f32, zero past capacity: selection reads whole mask words
        private int _capacity;
        private readonly int _stride;
        private bool _disposed;

        public Store(CpuVectorScanner scanner, int dimensions, int capacity)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
            ArgumentOutOfRangeException.ThrowIfNegative(capacity);
            _scanner = scanner;
            Dimensions = dimensions;
            _stride = (dimensions + Int8DotKernels.StrideMultiple - 1) / Int8DotKernels.StrideMultiple * Int8DotKernels.StrideMultiple;
            _scales = [];
            Allocate(capacity);
        }

        public int Dimensions { get; }
        public int Capacity => _capacity;

        private void Allocate(int capacity)
        {
            nuint bytes = (nuint)Math.Max(1L, (long)capacity * _stride);
            var fresh = (sbyte*)NativeMemory.AlignedAlloc(bytes, 64);
            NativeMemory.Clear(fresh, bytes);
            if (_values != null)
            {
                Buffer.MemoryCopy(_values, fresh, (long)bytes, (long)Capacity * _stride);
                NativeMemory.AlignedFree(_values);
            }
            _values = fresh;
            Array.Resize(ref _scales, (capacity + 63) & ~63);
            _capacity = capacity;
        }

        public void EnsureCapacity(int capacity)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (capacity > Capacity) Allocate(capacity);
        }

        public void WriteRow(int row, ReadOnlySpan<sbyte> values, float scale)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfNegative(row);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Capacity);
            if (values.Length != Dimensions) throw new ArgumentException($"row has {values.Length} values, not {Dimensions}", nameof(values));
            values.CopyTo(new Span<sbyte>(_values + (long)row * _stride, Dimensions));
            _scales[row] = scale;
        }

        public void ReadRows(int start, int count, Span<sbyte> values, Span<float> scales)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (start < 0 || count < 0 || start + count > Capacity) throw new ArgumentOutOfRangeException(nameof(count));
            for (int i = 0; i < count; i++)
                new ReadOnlySpan<sbyte>(_values + (long)(start + i) * _stride, Dimensions).CopyTo(values.Slice(i * Dimensions, Dimensions));
            _scales.AsSpan(start, count).CopyTo(scales);
        }

        public void Scan(ReadOnlySpan<float> queries, int rowCount, ReadOnlySpan<ulong> masks, ReadOnlySpan<int> maskOfQuery, int k,
            Span<int> rows, Span<float> scores)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int batch = VectorScanArguments.Check(this, queries, rowCount, masks, maskOfQuery, k, rows, scores);
            bool pooled = Monitor.TryEnter(_scanner._poolGate);
            try
            {
                var job = pooled ? _scanner._poolJob : new ScanJob(1);
                job.Prepare(this, queries, batch, k, rowCount, maskOfQuery);
                fixed (ulong* m = masks)
                fixed (int* mq = maskOfQuery)
                {
                    job.Masks = m;
                    job.MaskOfQuery = mq;
                    if (pooled) _scanner._pool.Run(job);
                    else job.Execute(0, 1);
                    job.Masks = null;
                    job.MaskOfQuery = null;
                }
                job.Merge(rows, scores);
            }
            finally
            {
                if (pooled) Monitor.Exit(_scanner._poolGate);
            }
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            NativeMemory.AlignedFree(_values);
            _values = null;
        }

        internal sbyte* Values => _values;
        internal float[] Scales => _scales;
        internal int Stride => _stride;
        internal VectorKernelPath Path => _scanner.Path;
    }

    /// <summary>One scan's inputs and per-worker heaps; reused by the pool across scans (grows, never shrinks).</summary>
    private sealed class ScanJob(int workers) : WorkerPool.Job
    {
        private Store _store = null!;
        private short[] _q = [];        // [batch, stride] int16 queries (pinned)
        private float[] _qScale = [];   // [batch]
        private float[][] _heapScores = new float[workers][]; // per worker [batch, k]
        private int[][] _heapRows = new int[workers][];
        private int[][] _counts = new int[workers][];         // per worker [batch]
        private float[] _mergeScores = [];                    // [workers, k]
        private int[] _mergeRows = [];
        private int _batch, _k, _rowCount, _next;
        public ulong* Masks;
        public int* MaskOfQuery;

        public void Prepare(Store store, ReadOnlySpan<float> queries, int batch, int k, int rowCount, ReadOnlySpan<int> maskOfQuery)
        {
            _store = store;
            _batch = batch;
            _k = k;
            _rowCount = rowCount;
            _next = 0;
            int stride = store.Stride, dims = store.Dimensions;
            if (_q.Length < batch * stride) _q = GC.AllocateArray<short>(batch * stride, pinned: true);
            if (_qScale.Length < batch) _qScale = new float[batch];
            // Largest |q| such that Σ_j 127 · |q_j| cannot overflow int32.
            int qmax = (int)Math.Min(short.MaxValue, int.MaxValue / (127L * dims));
            for (int b = 0; b < batch; b++)
                _qScale[b] = QuantizeQuery(queries.Slice(b * dims, dims), _q.AsSpan(b * stride, stride), qmax);
            for (int w = 0; w < _heapScores.Length; w++)
            {
                if (_heapScores[w] is null || _heapScores[w].Length < batch * k)
                {
                    _heapScores[w] = new float[batch * k];
                    _heapRows[w] = new int[batch * k];
                }
                if (_counts[w] is null || _counts[w].Length < batch) _counts[w] = new int[batch];
                _counts[w].AsSpan(0, batch).Clear();
            }
            if (_mergeScores.Length < _heapScores.Length * k)
            {
                _mergeScores = new float[_heapScores.Length * k];
                _mergeRows = new int[_heapScores.Length * k];
            }
        }

        // Full optimization from the first call: the tiered, PGO-instrumented versions of this loop ran at half speed.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Execute(int worker, int workers)
        {
            var store = _store;
            int stride = store.Stride, k = _k, batch = _batch, rowCount = _rowCount;
            int words = Core.Backend.VectorScanArguments.MaskWords(rowCount);
            int chunks = (rowCount + ChunkRows - 1) / ChunkRows;
            var path = store.Path;
            var scales = store.Scales;
            var hs = _heapScores[worker];
            var hr = _heapRows[worker];
            var counts = _counts[worker];
            sbyte* values = store.Values;
            ulong lastWord = (rowCount & 63) == 0 ? ulong.MaxValue : (1UL << (rowCount & 63)) - 1;
            const int block = Int8DotKernels.BlockRows;
            int* dots = stackalloc int[4 * block]; // [query of the group, row of the word] exact int32 sums
            float* wordScores = stackalloc float[block]; // [row of the word] f32 scores of one query
            ulong* m = stackalloc ulong[4];
            fixed (short* q = _q)
            fixed (float* qScale = _qScale)
            fixed (float* rowScale = scales)
            {
                int c;
                while ((c = Interlocked.Increment(ref _next) - 1) < chunks)
                {
                    int w0 = c * (ChunkRows / block);
                    int w1 = Math.Min(w0 + ChunkRows / block, words);
                    for (int g = 0; g < batch; g += 4)
                    {
                        int n = Math.Min(4, batch - g);
                        short* qg = q + g * stride;
                        for (int w = w0; w < w1; w++)
                        {
                            ulong union = 0;
                            for (int i = 0; i < n; i++)
                            {
                                m[i] = Masks[(long)MaskOfQuery[g + i] * words + w];
                                union |= m[i];
                            }
                            if (w == words - 1) union &= lastWord;
                            if (union == 0) continue;
                            int r0 = w * block;
                            sbyte* rows = values + (long)r0 * stride;
                            if (union == ulong.MaxValue)
                                Int8DotKernels.DotRows(path, rows, block, qg, stride, n, stride, dots);
                            else
                                for (ulong u = union; u != 0; u &= u - 1)
                                {
                                    int bit = BitOperations.TrailingZeroCount(u);
                                    Int8DotKernels.Dot(path, rows + (long)bit * stride, qg, stride, n, stride, dots + bit, block);
                                }
                            // Selection: scores of the word's 64 rows, 8 lanes at a time, compared with the heap's current
                            // worst; only rows at or above it (rare once the heap is full) are offered to the heap.
                            for (int i = 0; i < n; i++)
                            {
                                int b = g + i, at = b * k;
                                var qs = Vector256.Create(qScale[b]);
                                float floor = counts[b] < k ? float.NegativeInfinity : hs[at];
                                var floorV = Vector256.Create(floor);
                                int* d = dots + i * block;
                                ulong candidates = 0;
                                for (int j = 0; j < block; j += 8)
                                {
                                    var sv = Vector256.ConvertToSingle(Vector256.Load(d + j)) * (Vector256.Load(rowScale + r0 + j) * qs);
                                    sv.Store(wordScores + j);
                                    candidates |= (ulong)Vector256.GreaterThanOrEqual(sv, floorV).ExtractMostSignificantBits() << j;
                                }
                                for (ulong u = candidates & m[i] & union; u != 0; u &= u - 1)
                                {
                                    int bit = BitOperations.TrailingZeroCount(u);
                                    float s = wordScores[bit];
                                    if (s < floor) continue;
                                    counts[b] = TopKHeap.Push(hs.AsSpan(at, k), hr.AsSpan(at, k), counts[b], s, r0 + bit);
                                    if (counts[b] == k) floor = hs[at];
                                }
                            }
                        }
                    }
                }
            }
        }

        /// <summary>Merges the workers' heaps into the results, best first.</summary>
        public void Merge(Span<int> rows, Span<float> scores)
        {
            int workers = _heapScores.Length, k = _k;
            Span<int> partCounts = stackalloc int[workers];
            for (int b = 0; b < _batch; b++)
            {
                for (int w = 0; w < workers; w++)
                {
                    int n = _counts[w][b];
                    partCounts[w] = n;
                    _heapScores[w].AsSpan(b * k, n).CopyTo(_mergeScores.AsSpan(w * k));
                    _heapRows[w].AsSpan(b * k, n).CopyTo(_mergeRows.AsSpan(w * k));
                }
                TopKHeap.MergeSorted(_mergeScores, _mergeRows, partCounts, k, scores.Slice(b * k, k), rows.Slice(b * k, k));
            }
            _store = null!;
        }
    }
}
