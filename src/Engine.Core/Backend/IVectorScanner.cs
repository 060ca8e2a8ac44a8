namespace Engine.Core.Backend;

/// <summary>
/// A backend that scores f32 queries against rows of int8 vectors (one f32 scale per row, so row r stands
/// for <c>scale[r] · m[r, :]</c>) and keeps the top k per query: the scan under a product index. The rows
/// live where the backend computes (host memory for the CPU, device memory for a GPU), in an
/// <see cref="IVectorStore"/> that is written one row at a time, so an index upserts and deletes without
/// re-uploading anything.
/// </summary>
public interface IVectorScanner
{
    /// <summary>Short name for logs and benchmarks (e.g. <c>cpu-avx512</c>, <c>ilgpu-cuda</c>).</summary>
    string Name { get; }

    /// <summary>Row storage for vectors of <paramref name="dimensions"/> values, room for <paramref name="capacity"/> rows (all zero).</summary>
    IVectorStore CreateStore(int dimensions, int capacity);
}

/// <summary>
/// Rows of int8 vectors with one f32 scale each, owned by a scanner.
/// <para>
/// Threading: any number of <see cref="Scan"/> calls may run at once; <see cref="WriteRow"/>,
/// <see cref="EnsureCapacity"/> and <see cref="IDisposable.Dispose"/> must not overlap anything else (the owner, e.g. a
/// product index, holds a reader-writer lock: scans read, writes write).
/// </para>
/// </summary>
public interface IVectorStore : IDisposable
{
    /// <summary>Values per row.</summary>
    int Dimensions { get; }

    /// <summary>Rows allocated; row indices are <c>[0, Capacity)</c>.</summary>
    int Capacity { get; }

    /// <summary>Grows to at least <paramref name="capacity"/> rows, keeping every row; new rows are zero.</summary>
    void EnsureCapacity(int capacity);

    /// <summary>
    /// Largest k <see cref="Scan"/> accepts (a GPU selection keeps a bounded number of candidates per pass);
    /// <see cref="int.MaxValue"/> when unbounded. A product index asks for at most this many rescoring candidates.
    /// </summary>
    int MaxK => int.MaxValue;

    /// <summary>Overwrites row <paramref name="row"/> with <paramref name="values"/> (<c>[Dimensions]</c> int8) and <paramref name="scale"/>.</summary>
    void WriteRow(int row, ReadOnlySpan<sbyte> values, float scale);

    /// <summary>Copies rows <c>[start, start + count)</c> out: <paramref name="values"/> <c>[count, Dimensions]</c> int8, <paramref name="scales"/> <c>[count]</c>.</summary>
    void ReadRows(int start, int count, Span<sbyte> values, Span<float> scales);

    /// <summary>
    /// Top <paramref name="k"/> rows for each query by score <c>scale[r] · Σ_j q[j] · m[r, j]</c>.
    /// </summary>
    /// <param name="queries"><c>[batch, Dimensions]</c> f32, batch = <c>queries.Length / Dimensions</c>.</param>
    /// <param name="rowCount">Rows <c>[0, rowCount)</c> are candidates (at most <see cref="Capacity"/>).</param>
    /// <param name="masks">
    /// <c>[m, ceil(rowCount / 64)]</c> bitmaps, bit <c>r &amp; 63</c> of word <c>r &gt;&gt; 6</c> set = row r allowed.
    /// Rows outside the mask are never scored: the filter is exact.
    /// </param>
    /// <param name="maskOfQuery"><c>[batch]</c>: which of the m masks each query scans under.</param>
    /// <param name="k">Results per query, at least 1.</param>
    /// <param name="rows"><c>[batch, k]</c> row indices, best first; −1 where fewer than k rows are allowed.</param>
    /// <param name="scores"><c>[batch, k]</c> scores, best first (ties go to the smaller row); −∞ with row −1.</param>
    void Scan(ReadOnlySpan<float> queries, int rowCount, ReadOnlySpan<ulong> masks, ReadOnlySpan<int> maskOfQuery, int k,
        Span<int> rows, Span<float> scores);
}

/// <summary>Argument checks every <see cref="IVectorStore"/> shares, so each backend rejects the same inputs the same way.</summary>
public static class VectorScanArguments
{
    /// <summary>Words of a mask over <paramref name="rowCount"/> rows.</summary>
    public static int MaskWords(int rowCount) => (rowCount + 63) >> 6;

    /// <summary>Throws <see cref="ArgumentException"/> unless the arguments of <see cref="IVectorStore.Scan"/> fit together; returns the batch size.</summary>
    public static int Check(IVectorStore store, ReadOnlySpan<float> queries, int rowCount, ReadOnlySpan<ulong> masks,
        ReadOnlySpan<int> maskOfQuery, int k, Span<int> rows, Span<float> scores)
    {
        int dims = store.Dimensions;
        if (queries.Length == 0 || queries.Length % dims != 0)
            throw new ArgumentException($"queries: {queries.Length} floats are not a batch of {dims}-vectors", nameof(queries));
        int batch = queries.Length / dims;
        if (rowCount < 0 || rowCount > store.Capacity)
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"row count {rowCount} is outside 0..{store.Capacity}");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} must be at least 1");
        if (maskOfQuery.Length != batch)
            throw new ArgumentException($"maskOfQuery has {maskOfQuery.Length} entries for {batch} queries", nameof(maskOfQuery));
        int words = MaskWords(rowCount);
        int maskCount = words == 0 ? int.MaxValue : masks.Length / words;
        if (words > 0 && masks.Length % words != 0)
            throw new ArgumentException($"masks: {masks.Length} words are not whole masks of {words}", nameof(masks));
        foreach (int m in maskOfQuery)
            if (m < 0 || m >= maskCount) throw new ArgumentException($"mask index {m} is outside the {maskCount} masks given", nameof(maskOfQuery));
        if (rows.Length < (long)batch * k || scores.Length < (long)batch * k)
            throw new ArgumentException($"results need room for {batch} × {k}");
        return batch;
    }
}
