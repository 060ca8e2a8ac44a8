using Engine.Core.Backend;
using Engine.Core.Quant;
using Engine.Cpu.Vectors;
using Engine.Runtime.Ranking;

namespace Engine.Kernels.Tests;

/// <summary><see cref="IlgpuVectorScanner"/> against <see cref="ReferenceVectorScanner"/>: per-query masks, row rewrites, growth, and a product index on top.</summary>
[Collection("ilgpu")]
public class IlgpuVectorScannerTests
{
    public static TheoryData<string> Devices => Tests.Devices.Names;

    private static void FillRandom(Random rng, int rows, int dims, params IVectorStore[] stores)
    {
        var x = new float[dims];
        var q = new sbyte[dims];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < dims; j++) x[j] = (float)(rng.NextDouble() * 2 - 1);
            float scale = Int8Vector.Quantize(x, q);
            foreach (var s in stores) s.WriteRow(r, q, scale);
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Scan_matches_the_reference_with_a_mask_per_query(string device)
    {
        var d = Tests.Devices.Get(device).Device;
        var rng = new Random(17);
        // 50 dims: not a multiple of the kernel's 4-value packing, so padding must not count.
        foreach (int dims in new[] { 384, 50 })
        {
            const int rows = 2600, k = 12, batch = 3; // > one 2048-candidate chunk: two selection passes
            int rowCount = rows - 5;
            using var gpu = new IlgpuVectorScanner(d).CreateStore(dims, 1000);
            gpu.EnsureCapacity(rows); // grows on the device
            using var reference = new ReferenceVectorScanner().CreateStore(dims, rows);
            FillRandom(rng, rows, dims, gpu, reference);
            int words = VectorScanArguments.MaskWords(rowCount);
            var masks = new ulong[2 * words];
            for (int i = 0; i < words; i++) masks[i] = ulong.MaxValue;
            for (int i = words; i < masks.Length; i++) masks[i] = (ulong)rng.NextInt64() & (ulong)rng.NextInt64(); // ~25 % allowed
            int[] maskOfQuery = [1, 0, 1];
            var queries = Enumerable.Range(0, batch * dims).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var (gotRows, gotScores) = (new int[batch * k], new float[batch * k]);
            var (refRows, refScores) = (new int[batch * k], new float[batch * k]);
            gpu.Scan(queries, rowCount, masks, maskOfQuery, k, gotRows, gotScores);
            reference.Scan(queries, rowCount, masks, maskOfQuery, k, refRows, refScores);
            for (int i = 0; i < batch * k; i++)
            {
                double scale = Math.Abs(refScores[(i / k) * k]); // the wide scan quantizes the query to int16: WideScore
                Assert.True(Math.Abs(gotScores[i] - refScores[i]) <= KernelTolerances.WideScore * scale, $"dims {dims}, result {i}: {gotScores[i]} vs {refScores[i]}");
                if (gotRows[i] != refRows[i]) // only an f32 near-tie may swap
                    Assert.True(Math.Abs(refScores[i] - gotScores[i]) <= KernelTolerances.WideScore * scale, $"dims {dims}, result {i}: row {gotRows[i]} vs {refRows[i]}");
                int b = i / k, r = gotRows[i];
                Assert.True(((masks[maskOfQuery[b] * words + (r >> 6)] >> (r & 63)) & 1) != 0, $"row {r} is outside query {b}'s mask");
            }
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Rewritten_rows_read_back_and_rank_with_their_new_values(string device)
    {
        var d = Tests.Devices.Get(device).Device;
        const int dims = 10, rows = 70;
        using var store = new IlgpuVectorScanner(d).CreateStore(dims, rows);
        var other = new sbyte[dims]; other[1] = 100;
        var one = new sbyte[dims]; one[9] = 127;
        for (int r = 0; r < rows; r++) store.WriteRow(r, other, 1f);
        store.WriteRow(65, one, 2f);
        var back = new sbyte[2 * dims];
        var scales = new float[2];
        store.ReadRows(64, 2, back, scales);
        Assert.Equal(other, back[..dims]);
        Assert.Equal(one, back[dims..]);
        Assert.Equal([1f, 2f], scales);
        var query = new float[dims]; query[9] = 1;
        var mask = new ulong[VectorScanArguments.MaskWords(rows)]; mask.AsSpan().Fill(ulong.MaxValue);
        var (outRows, outScores) = (new int[2], new float[2]);
        store.Scan(query, rows, mask, [0], 2, outRows, outScores);
        Assert.Equal(65, outRows[0]);
        Assert.Equal(254f, outScores[0], 1e-3f);
        Assert.Equal(0, outRows[1]); // all others score 0: ties go to the smaller row
    }

    [Theory, MemberData(nameof(Devices))]
    public void Product_index_on_the_gpu_scanner_agrees_with_the_cpu_scanner(string device)
    {
        var d = Tests.Devices.Get(device).Device;
        var rng = new Random(5);
        const int dims = 32, n = 900;
        var vectors = Enumerable.Range(0, n * dims).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var ids = Enumerable.Range(0, n).Select(i => $"p{i}").ToArray();
        var facets = Enumerable.Range(0, n).Select(i => new ProductFacets(i % 4, i % 100, i % 5 != 0)).ToArray();
        using var cpuScanner = new CpuVectorScanner(1);
        using var gpuIndex = new ProductIndex(dims, new IlgpuVectorScanner(d));
        using var cpuIndex = new ProductIndex(dims, cpuScanner);
        foreach (var index in new[] { gpuIndex, cpuIndex })
        {
            index.UpsertBatch(ids, vectors, facets);
            index.Remove("p7");
        }
        var filters = new[] { ProductFilter.None, new ProductFilter { InStockOnly = true, Categories = [1, 2], MaxPrice = 60 } };
        var queries = vectors.AsSpan(0, 2 * dims).ToArray();
        var g = gpuIndex.SearchBatch(queries, 10, filters);
        var c = cpuIndex.SearchBatch(queries, 10, filters);
        for (int b = 0; b < 2; b++)
        {
            Assert.Equal(c[b].Count, g[b].Count);
            for (int i = 0; i < c[b].Count; i++)
                Assert.True(Math.Abs(c[b][i].Score - g[b][i].Score) <= 1e-3 * Math.Abs(c[b][0].Score), $"query {b} rank {i}");
            Assert.DoesNotContain(g[b], h => h.ProductId == "p7");
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Rescoring_candidates_are_capped_at_the_gpu_scanners_max_k(string device)
    {
        var d = Tests.Devices.Get(device).Device;
        var rng = new Random(8);
        const int dims = 32, n = IlgpuVectorScanner.MaxK + 300, k = 300, factor = 4; // k · factor > MaxK
        var vectors = Enumerable.Range(0, n * dims).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var ids = Enumerable.Range(0, n).Select(i => $"p{i}").ToArray();
        var facets = Enumerable.Range(0, n).Select(i => new ProductFacets(0, 1, true)).ToArray();
        using var cpuScanner = new CpuVectorScanner(1);
        using var gpuIndex = new ProductIndex(dims, new IlgpuVectorScanner(d));
        using var cpuIndex = new ProductIndex(dims, cpuScanner);
        gpuIndex.UpsertBatch(ids, vectors, facets);
        cpuIndex.UpsertBatch(ids, vectors, facets);
        gpuIndex.RescoreFactor = cpuIndex.RescoreFactor = factor;
        var query = vectors.AsSpan(5 * dims, dims).ToArray();
        var g = gpuIndex.Search(query, k, ProductFilter.None); // scans MaxK candidates, not k · factor
        var c = cpuIndex.Search(query, k, ProductFilter.None);
        Assert.Equal(k, g.Count);
        Assert.Equal("p5", g[0].ProductId);
        for (int i = 0; i < k; i++) Assert.True(Math.Abs(c[i].Score - g[i].Score) <= 1e-4 * c[0].Score, $"rank {i}: {g[i].Score} vs {c[i].Score}");
        Assert.True(g.Select(h => h.ProductId).Intersect(c.Select(h => h.ProductId)).Count() >= k - 2, "top-k sets differ beyond near-ties");
    }
}
