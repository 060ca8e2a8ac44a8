using System.Runtime.InteropServices;
using Engine.Core.Backend;

namespace Engine.Kernels;

/// <summary>
/// The ILGPU <see cref="IVectorScanner"/>: each store is an <see cref="IlgpuVectorIndex"/> on the device (rows
/// padded with zeros to a multiple of 16 values, the wide scan's 16-byte loads), rows written one at a time, scans run
/// by <see cref="SimilarityKernel"/> + <see cref="TopKSelectKernel"/> (the wide forms unless switched off: the query is
/// then quantized to int16 as in the SIMD CPU scanner). The kernels take one filter per launch, so a
/// batch is scanned once per distinct mask (queries sharing a filter share a launch).
/// <para>
/// Threading: the device buffers and scratch of a store are shared, so a store runs one scan at a time
/// (concurrent scans wait on a lock). k is at most <see cref="MaxK"/> (half a selection chunk).
/// </para>
/// </summary>
public sealed class IlgpuVectorScanner(IlgpuDevice device) : IVectorScanner
{
    /// <summary>Largest k a scan accepts.</summary>
    public const int MaxK = TopKSelectKernel.Chunk / 2;

    /// <inheritdoc/>
    public string Name => device.IsCuda ? "ilgpu-cuda" : "ilgpu-cpu";

    /// <inheritdoc/>
    public IVectorStore CreateStore(int dimensions, int capacity) => new Store(device, dimensions, capacity);

    private sealed class Store : IVectorStore
    {
        private readonly IlgpuVectorIndex _index;
        private readonly int _padded;       // dims rounded up to a multiple of 16
        private readonly sbyte[] _row;      // [padded] staging for one padded row
        private readonly Lock _gate = new();

        public Store(IlgpuDevice device, int dimensions, int capacity)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
            ArgumentOutOfRangeException.ThrowIfNegative(capacity);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("masks are reinterpreted as 32-bit words: little-endian only");
            Dimensions = dimensions;
            _padded = (dimensions + 15) & ~15;
            _row = new sbyte[_padded];
            _index = new IlgpuVectorIndex(device, _padded, capacity);
        }

        public int Dimensions { get; }
        public int Capacity => _index.Count;

        public int MaxK => IlgpuVectorScanner.MaxK;

        public void EnsureCapacity(int capacity)
        {
            lock (_gate) _index.EnsureCapacity(capacity);
        }

        public void WriteRow(int row, ReadOnlySpan<sbyte> values, float scale)
        {
            if (values.Length != Dimensions) throw new ArgumentException($"row has {values.Length} values, not {Dimensions}", nameof(values));
            lock (_gate)
            {
                values.CopyTo(_row);
                _index.WriteRow(row, _row, scale);
            }
        }

        public void ReadRows(int start, int count, Span<sbyte> values, Span<float> scales)
        {
            if (start < 0 || count < 0 || start + count > Capacity) throw new ArgumentOutOfRangeException(nameof(count));
            var padded = new sbyte[(long)count * _padded];
            lock (_gate) _index.ReadRows(start, count, padded, scales);
            for (int i = 0; i < count; i++) padded.AsSpan(i * _padded, Dimensions).CopyTo(values.Slice(i * Dimensions, Dimensions));
        }

        public void Scan(ReadOnlySpan<float> queries, int rowCount, ReadOnlySpan<ulong> masks, ReadOnlySpan<int> maskOfQuery, int k,
            Span<int> rows, Span<float> scores)
        {
            int batch = VectorScanArguments.Check(this, queries, rowCount, masks, maskOfQuery, k, rows, scores);
            if (k > MaxK) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k}: the ILGPU scanner keeps at most {MaxK}");
            int words = VectorScanArguments.MaskWords(rowCount);
            for (int first = 0; first < batch; first++)
            {
                int m = maskOfQuery[first];
                if (maskOfQuery.IndexOf(m) != first) continue; // mask m was handled with its first query
                // The queries under mask m, padded to the kernel's width: [n, padded] f32.
                var members = new List<int>();
                for (int b = first; b < batch; b++) if (maskOfQuery[b] == m) members.Add(b);
                var q = new float[members.Count * _padded];
                for (int i = 0; i < members.Count; i++)
                    queries.Slice(members[i] * Dimensions, Dimensions).CopyTo(q.AsSpan(i * _padded));
                var ids = new int[members.Count * k];
                var s = new float[members.Count * k];
                var filter = MemoryMarshal.Cast<ulong, uint>(masks.Slice(m * words, words));
                lock (_gate) _index.Search(q, k, filter.IsEmpty ? [0u] : filter, ids, s, rowCount);
                for (int i = 0; i < members.Count; i++)
                {
                    ids.AsSpan(i * k, k).CopyTo(rows.Slice(members[i] * k, k));
                    s.AsSpan(i * k, k).CopyTo(scores.Slice(members[i] * k, k));
                }
            }
        }

        public void Dispose()
        {
            lock (_gate) _index.Dispose();
        }
    }
}
