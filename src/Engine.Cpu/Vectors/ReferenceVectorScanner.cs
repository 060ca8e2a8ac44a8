using Engine.Core.Backend;

namespace Engine.Cpu.Vectors;

/// <summary>
/// The scalar reference of <see cref="IVectorScanner"/>: rows in managed arrays, every allowed row scored as
/// <c>scale[r] · Σ_j q[j] · m[r, j]</c> with the f32 query as given (no query quantization), summed in double,
/// one bounded heap per query. Slow and plain: what the SIMD and GPU scanners are tested against.
/// </summary>
public sealed class ReferenceVectorScanner : IVectorScanner
{
    /// <inheritdoc/>
    public string Name => "reference";

    /// <inheritdoc/>
    public IVectorStore CreateStore(int dimensions, int capacity) => new Store(dimensions, capacity);

    private sealed class Store : IVectorStore
    {
        private sbyte[] _values; // [capacity, dims] int8
        private float[] _scales; // [capacity] f32

        public Store(int dimensions, int capacity)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
            ArgumentOutOfRangeException.ThrowIfNegative(capacity);
            Dimensions = dimensions;
            _values = new sbyte[(long)capacity * dimensions];
            _scales = new float[capacity];
        }

        public int Dimensions { get; }
        public int Capacity => _scales.Length;

        public void EnsureCapacity(int capacity)
        {
            if (capacity <= Capacity) return;
            Array.Resize(ref _values, checked(capacity * Dimensions));
            Array.Resize(ref _scales, capacity);
        }

        public void WriteRow(int row, ReadOnlySpan<sbyte> values, float scale)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(row);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Capacity);
            if (values.Length != Dimensions) throw new ArgumentException($"row has {values.Length} values, not {Dimensions}", nameof(values));
            values.CopyTo(_values.AsSpan(row * Dimensions, Dimensions));
            _scales[row] = scale;
        }

        public void ReadRows(int start, int count, Span<sbyte> values, Span<float> scales)
        {
            if (start < 0 || count < 0 || start + count > Capacity) throw new ArgumentOutOfRangeException(nameof(count));
            _values.AsSpan(start * Dimensions, count * Dimensions).CopyTo(values);
            _scales.AsSpan(start, count).CopyTo(scales);
        }

        public void Scan(ReadOnlySpan<float> queries, int rowCount, ReadOnlySpan<ulong> masks, ReadOnlySpan<int> maskOfQuery, int k,
            Span<int> rows, Span<float> scores)
        {
            int batch = VectorScanArguments.Check(this, queries, rowCount, masks, maskOfQuery, k, rows, scores);
            int words = VectorScanArguments.MaskWords(rowCount);
            int dims = Dimensions;
            var hs = new float[k];
            var hr = new int[k];
            for (int b = 0; b < batch; b++)
            {
                var q = queries.Slice(b * dims, dims);
                var mask = masks.Slice(maskOfQuery[b] * words, words);
                int n = 0;
                for (int r = 0; r < rowCount; r++)
                {
                    if (((mask[r >> 6] >> (r & 63)) & 1) == 0) continue;
                    double dot = 0;
                    var m = _values.AsSpan(r * dims, dims);
                    for (int j = 0; j < dims; j++) dot += (double)q[j] * m[j];
                    n = TopKHeap.Push(hs, hr, n, (float)(dot * _scales[r]), r);
                }
                TopKHeap.MergeSorted(hs, hr, [n], k, scores.Slice(b * k, k), rows.Slice(b * k, k));
            }
        }

        public void Dispose() { }
    }
}
