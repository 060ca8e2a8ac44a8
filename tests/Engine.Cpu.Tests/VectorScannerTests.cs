using Engine.Core.Backend;
using Engine.Core.Quant;
using Engine.Cpu.Vectors;

namespace Engine.Cpu.Tests;

/// <summary>The SIMD vector scanner against the scalar reference scanner, on fresh random int8 rows and masks.</summary>
public class VectorScannerTests
{
    /// <summary>
    /// Scores of the SIMD scanner against the reference (f32 query, double sums): the query is quantized to int16
    /// (step 2^-15 of its largest value, error ≤ half a step per value), so a score moves by about
    /// 2^-16 · |q|_max · Σ|m·scale| / sqrt(3·dims) relative; 1e-4 normalized error bounds it with margin.
    /// </summary>
    private const double QueryQuantization = 1e-4;

    public static TheoryData<VectorKernelPath, int, int> Paths()
    {
        var data = new TheoryData<VectorKernelPath, int, int>();
        foreach (var path in new[] { VectorKernelPath.Avx512, VectorKernelPath.Avx2, VectorKernelPath.Scalar })
        {
            if (path == VectorKernelPath.Avx512 && !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) continue;
            if (path == VectorKernelPath.Avx2 && !System.Runtime.Intrinsics.X86.Avx2.IsSupported) continue;
            data.Add(path, 1, 384);
            data.Add(path, 2, 384);
            data.Add(path, 2, 50); // not a multiple of the 32-value stride: padding must not count
        }
        return data;
    }

    private static (sbyte[] Values, float[] Scales) RandomRows(Random rng, int n, int dims)
    {
        var values = new sbyte[n * dims];
        var scales = new float[n];
        var x = new float[dims];
        for (int r = 0; r < n; r++)
        {
            for (int j = 0; j < dims; j++) x[j] = (float)(rng.NextDouble() * 2 - 1) * (1 + r % 3);
            scales[r] = Int8Vector.Quantize(x, values.AsSpan(r * dims, dims));
        }
        return (values, scales);
    }

    private static void Fill(IVectorStore store, sbyte[] values, float[] scales)
    {
        int dims = store.Dimensions;
        for (int r = 0; r < scales.Length; r++) store.WriteRow(r, values.AsSpan(r * dims, dims), scales[r]);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Simd_scan_matches_the_reference_under_masks(VectorKernelPath path, int threads, int dims) =>
        ScanMatchesReference(path, threads, dims, [0, 1, 2, 0, 2, 1]);

    /// <summary>One query (the served Recommend's usual scan): four rows per step against the one query, under a full mask
    /// (the dense path) and under a partial one.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Single_query_scan_matches_the_reference(VectorKernelPath path, int threads, int dims)
    {
        ScanMatchesReference(path, threads, dims, [2]);
        ScanMatchesReference(path, threads, dims, [0]);
    }

    /// <summary>Two and three queries (what concurrent Recommends batch into under load): query pairs over row pairs, the
    /// odd query four rows at a time, dense (full masks) and mixed.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Small_batch_scans_match_the_reference(VectorKernelPath path, int threads, int dims)
    {
        ScanMatchesReference(path, threads, dims, [2, 2]);
        ScanMatchesReference(path, threads, dims, [2, 2, 2]);
        ScanMatchesReference(path, threads, dims, [0, 1, 2]);
    }

    private static void ScanMatchesReference(VectorKernelPath path, int threads, int dims, int[] maskOfQuery)
    {
        var rng = new Random(1234 + threads + dims + maskOfQuery.Length);
        const int rows = 3000, k = 20;
        int batch = maskOfQuery.Length;
        int rowCount = rows - 7; // the last mask word is partial and its stray bits must be ignored
        var (values, scales) = RandomRows(rng, rows, dims);
        using var scanner = new CpuVectorScanner(threads, path);
        var reference = new ReferenceVectorScanner();
        using var simd = scanner.CreateStore(dims, rows);
        using var refStore = reference.CreateStore(dims, rows);
        Fill(simd, values, scales);
        Fill(refStore, values, scales);

        int words = VectorScanArguments.MaskWords(rowCount);
        var masks = new ulong[3 * words];
        for (int i = 0; i < masks.Length; i++) masks[i] = (ulong)rng.NextInt64() | (ulong)rng.NextInt64(); // ~75 % set
        masks.AsSpan(2 * words, words).Fill(ulong.MaxValue);
        var queries = new float[batch * dims];
        for (int i = 0; i < queries.Length; i++) queries[i] = (float)(rng.NextDouble() * 2 - 1);

        var gotRows = new int[batch * k]; var gotScores = new float[batch * k];
        var refRows = new int[batch * k]; var refScores = new float[batch * k];
        simd.Scan(queries, rowCount, masks, maskOfQuery, k, gotRows, gotScores);
        refStore.Scan(queries, rowCount, masks, maskOfQuery, k, refRows, refScores);

        Assert.True(Tolerances.NormalizedError(gotScores, refScores) < QueryQuantization);
        for (int b = 0; b < batch; b++)
        {
            var mask = masks.AsSpan(maskOfQuery[b] * words, words);
            float kth = refScores[b * k + k - 1];
            float tie = MathF.Abs(kth) * 1e-3f;
            for (int i = 0; i < k; i++)
            {
                int r = gotRows[b * k + i];
                Assert.InRange(r, 0, rowCount - 1);
                Assert.True(((mask[r >> 6] >> (r & 63)) & 1) != 0, $"row {r} is outside query {b}'s mask");
                if (i > 0) Assert.True(gotScores[b * k + i] <= gotScores[b * k + i - 1], "results are not sorted");
                if (!refRows.AsSpan(b * k, k).Contains(r))
                    Assert.True(gotScores[b * k + i] >= kth - tie, $"query {b}: row {r} is not in the reference top {k} and not tied with it");
            }
        }
    }

    [Fact]
    public void Fewer_allowed_rows_than_k_are_padded_with_minus_one()
    {
        var rng = new Random(7);
        const int dims = 64, rows = 200, k = 10;
        var (values, scales) = RandomRows(rng, rows, dims);
        using var scanner = new CpuVectorScanner(2);
        using var store = scanner.CreateStore(dims, rows);
        Fill(store, values, scales);
        var mask = new ulong[VectorScanArguments.MaskWords(rows)];
        int[] allowed = [3, 77, 150, 199];
        foreach (int r in allowed) mask[r >> 6] |= 1UL << (r & 63);
        var query = new float[dims];
        for (int j = 0; j < dims; j++) query[j] = (float)rng.NextDouble();
        var outRows = new int[k]; var outScores = new float[k];
        store.Scan(query, rows, mask, [0], k, outRows, outScores);
        Assert.Equal(allowed.Order(), outRows[..4].Order());
        Assert.All(outRows[4..], r => Assert.Equal(-1, r));
        Assert.All(outScores[4..], s => Assert.Equal(float.NegativeInfinity, s));
    }

    [Fact]
    public void Rewritten_row_is_scored_with_its_new_values()
    {
        const int dims = 32, rows = 100;
        using var scanner = new CpuVectorScanner(1);
        using var store = scanner.CreateStore(dims, 10);
        store.EnsureCapacity(rows); // grows, keeping rows written before
        var one = new sbyte[dims]; one[0] = 127;
        var other = new sbyte[dims]; other[1] = 127;
        for (int r = 0; r < rows; r++) store.WriteRow(r, other, 1f);
        store.WriteRow(42, one, 1f);
        var query = new float[dims]; query[0] = 1;
        var mask = new ulong[VectorScanArguments.MaskWords(rows)]; mask.AsSpan().Fill(ulong.MaxValue);
        var outRows = new int[1]; var outScores = new float[1];
        store.Scan(query, rows, mask, [0], 1, outRows, outScores);
        Assert.Equal(42, outRows[0]);
        store.WriteRow(42, other, 1f);
        store.WriteRow(7, one, 0.5f);
        store.Scan(query, rows, mask, [0], 1, outRows, outScores);
        Assert.Equal(7, outRows[0]);
        Assert.Equal(63.5f, outScores[0], 1e-3f);
    }

    [Fact]
    public void Concurrent_scans_agree_with_one_at_a_time()
    {
        var rng = new Random(99);
        const int dims = 384, rows = 2000, k = 5;
        var (values, scales) = RandomRows(rng, rows, dims);
        using var scanner = new CpuVectorScanner(2);
        using var store = scanner.CreateStore(dims, rows);
        Fill(store, values, scales);
        var mask = new ulong[VectorScanArguments.MaskWords(rows)]; mask.AsSpan().Fill(ulong.MaxValue);
        var queries = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, dims).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray()).ToArray();
        int[][] expected = queries.Select(q => { var r = new int[k]; store.Scan(q, rows, mask, [0], k, r, new float[k]); return r; }).ToArray();
        var got = new int[queries.Length][];
        Parallel.For(0, queries.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var r = new int[k];
            store.Scan(queries[i % queries.Length], rows, mask, [0], k, r, new float[k]);
            Assert.Equal(expected[i % queries.Length], r);
        });
    }

    [Fact]
    public void Mismatched_arguments_are_rejected()
    {
        using var scanner = new CpuVectorScanner(1);
        using var store = scanner.CreateStore(8, 64);
        var mask = new ulong[1];
        var q = new float[8];
        Assert.Throws<ArgumentException>(() => store.Scan(new float[7], 64, mask, [0], 1, new int[1], new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Scan(q, 65, mask, [0], 1, new int[1], new float[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Scan(q, 64, mask, [0], 0, new int[1], new float[1]));
        Assert.Throws<ArgumentException>(() => store.Scan(q, 64, mask, [1], 1, new int[1], new float[1]));
        Assert.Throws<ArgumentException>(() => store.Scan(q, 64, mask, [0], 2, new int[1], new float[1]));
        Assert.Throws<ArgumentException>(() => store.WriteRow(0, new sbyte[7], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.WriteRow(64, new sbyte[8], 1));
    }
}
