using Engine.Cpu.Vectors;
using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

/// <summary>The product index on the SIMD CPU scanner: recall against exact f32, exact filters, updates, snapshots, bad input.</summary>
public sealed class ProductIndexTests : IDisposable
{
    private const int Dims = 64;

    /// <summary>
    /// Recall@10 of the int8 index against exact f32 cosine on clustered unit vectors: int8 rows move a score by
    /// ~1e-3, which swaps only near-ties at the boundary; 0.95 is well below what it reaches and far above chance.
    /// </summary>
    private const double MinRecallAt10 = 0.95;

    private readonly CpuVectorScanner _scanner = new(2);
    private readonly List<string> _tempFiles = [];

    public void Dispose()
    {
        _scanner.Dispose();
        foreach (var f in _tempFiles) File.Delete(f);
    }

    /// <summary>Unit vectors around <paramref name="clusters"/> random centres (like product embeddings of a few categories).</summary>
    private static float[] Clustered(Random rng, int n, int clusters, float spread)
    {
        var centres = new float[clusters * Dims];
        for (int i = 0; i < centres.Length; i++) centres[i] = Gaussian(rng);
        var x = new float[n * Dims];
        for (int r = 0; r < n; r++)
        {
            int c = r % clusters;
            var row = x.AsSpan(r * Dims, Dims);
            for (int j = 0; j < Dims; j++) row[j] = centres[c * Dims + j] + spread * Gaussian(rng);
            Normalize(row);
        }
        return x;
    }

    private static float Gaussian(Random rng) => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    private static void Normalize(Span<float> v)
    {
        double s = 0;
        foreach (float f in v) s += f * f;
        float inv = (float)(1 / Math.Sqrt(s));
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }

    private static ProductFacets FacetsOf(int i) => new(i % 7, (i * 37 % 200) + 0.5f, i % 3 != 0);

    private (ProductIndex Index, float[] Vectors, string[] Ids) Build(int n, int seed = 5)
    {
        var rng = new Random(seed);
        var vectors = Clustered(rng, n, 12, 0.6f);
        var ids = Enumerable.Range(0, n).Select(i => $"p{i}").ToArray();
        var index = new ProductIndex(Dims, _scanner);
        index.UpsertBatch(ids, vectors, ids.Select((_, i) => FacetsOf(i)).ToArray());
        return (index, vectors, ids);
    }

    /// <summary>Exact f32 top k among the products <paramref name="pass"/> lets through.</summary>
    private static List<(int Id, double Score)> ExactTop(float[] vectors, ReadOnlySpan<float> q, int k, Func<int, bool> pass)
    {
        var all = new List<(int, double)>();
        for (int i = 0; i < vectors.Length / Dims; i++)
        {
            if (!pass(i)) continue;
            double s = 0;
            for (int j = 0; j < Dims; j++) s += (double)vectors[i * Dims + j] * q[j];
            all.Add((i, s));
        }
        return all.OrderByDescending(t => t.Item2).Take(k).ToList();
    }

    private string Temp()
    {
        string f = Path.Combine(Path.GetTempPath(), $"pidx-{Guid.NewGuid():N}.bin");
        _tempFiles.Add(f);
        return f;
    }

    [Fact]
    public void Recall_at_10_of_the_int8_index_against_exact_f32_is_high()
    {
        var (index, vectors, _) = Build(3000);
        using var owned = index;
        var rng = new Random(11);
        var queries = Clustered(rng, 40, 12, 0.8f);
        var results = index.SearchBatch(queries, 10, Enumerable.Repeat(ProductFilter.None, 40).ToArray());
        double hits = 0;
        for (int b = 0; b < 40; b++)
        {
            var exact = ExactTop(vectors, queries.AsSpan(b * Dims, Dims), 10, _ => true).Select(t => $"p{t.Id}").ToHashSet();
            hits += results[b].Count(h => exact.Contains(h.ProductId));
            Assert.Equal(10, results[b].Count);
        }
        Assert.True(hits / 400 >= MinRecallAt10, $"recall@10 = {hits / 400}");
    }

    public static TheoryData<string> FilterNames() => ["stock", "category", "price", "combined", "empty-categories", "nothing-passes"];

    private static (ProductFilter Filter, Func<int, bool> Pass) FilterNamed(string name) => name switch
    {
        "stock" => (new ProductFilter { InStockOnly = true }, i => FacetsOf(i).InStock),
        "category" => (new ProductFilter { Categories = [2, 5] }, i => FacetsOf(i).Category is 2 or 5),
        "price" => (new ProductFilter { MinPrice = 20.5f, MaxPrice = 60.5f }, i => FacetsOf(i).Price is >= 20.5f and <= 60.5f),
        "combined" => (new ProductFilter { InStockOnly = true, Categories = [1, 3, 4], MaxPrice = 50 },
            i => FacetsOf(i).InStock && FacetsOf(i).Category is 1 or 3 or 4 && FacetsOf(i).Price <= 50),
        "empty-categories" => (new ProductFilter { Categories = [] }, _ => false),
        _ => (new ProductFilter { MinPrice = 1000 }, _ => false),
    };

    [Theory]
    [MemberData(nameof(FilterNames))]
    public void Filters_are_exact(string name)
    {
        var (index, vectors, _) = Build(2500, seed: 8);
        using var owned = index;
        var (filter, pass) = FilterNamed(name);
        var rng = new Random(3);
        var q = Clustered(rng, 1, 1, 0.5f);
        var hits = index.Search(q, 30, filter);
        var exact = ExactTop(vectors, q, 30, pass);
        Assert.Equal(exact.Count, hits.Count);
        foreach (var h in hits) Assert.True(pass(int.Parse(h.ProductId[1..])), $"{h.ProductId} does not pass the {name} filter");
        // Same set up to int8 near-ties at the boundary.
        var exactIds = exact.Select(t => $"p{t.Id}").ToHashSet();
        double boundary = exact.Count > 0 ? exact[^1].Score : 0;
        foreach (var h in hits.Where(h => !exactIds.Contains(h.ProductId)))
            Assert.True(h.Score >= boundary - 5e-3, $"{h.ProductId} ({h.Score}) is not tied with the exact top");
    }

    [Fact]
    public void A_filter_that_passes_few_products_returns_all_of_them()
    {
        var (index, _, _) = Build(2000);
        using var owned = index;
        var filter = new ProductFilter { Categories = [3], MinPrice = 10, MaxPrice = 12 };
        int passing = Enumerable.Range(0, 2000).Count(i => FacetsOf(i).Category == 3 && FacetsOf(i).Price is >= 10 and <= 12);
        Assert.InRange(passing, 1, 49);
        Assert.Equal(passing, index.Search(new float[Dims].Select((_, j) => j == 0 ? 1f : 0f).ToArray(), 50, filter).Count);
    }

    [Fact]
    public void Upsert_remove_and_reupsert_take_effect_without_a_rebuild()
    {
        var (index, vectors, _) = Build(500);
        using var owned = index;
        long v0 = index.Version;
        var target = new float[Dims]; target[5] = 1;

        index.Upsert("new", target, new ProductFacets(1, 9.5f, true));
        Assert.Equal(501, index.Count);
        Assert.Equal(v0 + 1, index.Version);
        var top = index.Search(target, 1, ProductFilter.None)[0];
        Assert.Equal("new", top.ProductId);
        Assert.Equal(1f, top.Score, 1e-3f);

        Assert.True(index.Remove("new"));
        Assert.False(index.Remove("new"));
        Assert.Equal(v0 + 2, index.Version);
        Assert.Equal(500, index.Count);
        Assert.False(index.TryGetFacets("new", out _));
        Assert.DoesNotContain(index.Search(target, 500, ProductFilter.None), h => h.ProductId == "new");

        // Re-upsert into the freed slot, with new facets: out of stock now, so a stock filter drops it.
        index.Upsert("new", target, new ProductFacets(2, 3f, false));
        Assert.True(index.TryGetFacets("new", out var f));
        Assert.Equal(new ProductFacets(2, 3f, false), f);
        Assert.Equal("new", index.Search(target, 1, ProductFilter.None)[0].ProductId);
        Assert.NotEqual("new", index.Search(target, 1, new ProductFilter { InStockOnly = true })[0].ProductId);

        // Moving an existing product's vector.
        index.Upsert("p17", target.Select(x => -x).ToArray(), FacetsOf(17));
        Assert.Equal("p17", index.Search(target.Select(x => -x).ToArray(), 1, ProductFilter.None)[0].ProductId);
        Assert.Equal(501, index.Count);
    }

    [Fact]
    public void Snapshot_round_trip_keeps_products_facets_and_results()
    {
        var (index, vectors, _) = Build(1500);
        using var owned = index;
        index.Remove("p3"); // a hole in the slots
        string path = Temp();
        index.Save(path);
        using var loaded = ProductIndex.Load(path, _scanner);
        Assert.Equal(index.Count, loaded.Count);
        Assert.Equal(index.Version, loaded.Version);
        Assert.Equal(Dims, loaded.Dimensions);
        Assert.True(loaded.TryGetFacets("p10", out var f));
        Assert.Equal(FacetsOf(10), f);
        Assert.False(loaded.TryGetFacets("p3", out _));
        var q = vectors.AsSpan(Dims * 42, Dims).ToArray();
        var filter = new ProductFilter { InStockOnly = true, MaxPrice = 100 };
        Assert.Equal(index.Search(q, 25, filter), loaded.Search(q, 25, filter));
    }

    [Theory]
    [InlineData("flip-vector")]
    [InlineData("flip-header")]
    [InlineData("truncate")]
    [InlineData("truncate-header")]
    [InlineData("append")]
    public void Corrupt_snapshot_is_rejected(string damage)
    {
        var (index, _, _) = Build(300);
        using var owned = index;
        string path = Temp();
        index.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes = damage switch
        {
            "flip-vector" => Flip(bytes, bytes.Length / 2),
            "flip-header" => Flip(bytes, 16),
            "truncate" => bytes[..(bytes.Length - 100)],
            "truncate-header" => bytes[..20],
            _ => [.. bytes, 0],
        };
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => ProductIndex.Load(path, _scanner));
        Assert.Contains(path, e.Message);

        static byte[] Flip(byte[] b, int at) { b[at] ^= 0x10; return b; }
    }

    [Fact]
    public void Bad_input_throws_and_leaves_the_index_unchanged()
    {
        var (index, _, _) = Build(200);
        using var owned = index;
        long version = index.Version;
        var good = new float[Dims]; good[0] = 1;
        var nan = (float[])good.Clone(); nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => index.Upsert("x", new float[Dims + 1], default));
        Assert.Throws<ArgumentException>(() => index.Upsert("x", nan, default));
        Assert.Throws<ArgumentException>(() => index.Upsert("", good, default));
        Assert.Throws<ArgumentException>(() => index.Upsert("x", good, new ProductFacets(0, -1, true)));
        Assert.Throws<ArgumentException>(() => index.UpsertBatch(["a", "b"], [.. good, .. nan], [default, default]));
        Assert.Throws<ArgumentException>(() => index.UpsertBatch(["a", "b"], good, [default, default]));
        Assert.Throws<ArgumentException>(() => index.Search(new float[Dims - 1], 5, ProductFilter.None));
        Assert.Throws<ArgumentException>(() => index.Search(nan, 5, ProductFilter.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(good, 0, ProductFilter.None));
        Assert.False(index.Remove("unknown"));
        Assert.Equal(200, index.Count);
        Assert.Equal(version, index.Version);
        Assert.False(index.TryGetFacets("a", out _));
        Assert.False(index.TryGetFacets("x", out _));
    }

    [Fact]
    public void Empty_index_returns_no_hits()
    {
        using var index = new ProductIndex(Dims, _scanner);
        Assert.Empty(index.Search(new float[Dims], 10, ProductFilter.None));
        string path = Temp();
        index.Save(path);
        using var loaded = ProductIndex.Load(path, _scanner);
        Assert.Equal(0, loaded.Count);
    }

    [Fact]
    public async Task Searches_run_concurrently_with_upserts()
    {
        var (index, vectors, _) = Build(1000);
        using var owned = index;
        var errors = new List<Exception>();
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 3).Select(t => Task.Run(() =>
        {
            try
            {
                var q = vectors.AsSpan(t * Dims, Dims).ToArray();
                while (!stop.IsCancellationRequested)
                {
                    var hits = index.Search(q, 10, ProductFilter.None);
                    if (hits.Count != 10) throw new InvalidOperationException($"{hits.Count} hits");
                }
            }
            catch (Exception e) { lock (errors) errors.Add(e); }
        })).ToArray();
        var rng = new Random(4);
        for (int i = 0; i < 300; i++)
        {
            var v = Clustered(rng, 1, 1, 0.5f);
            index.Upsert($"c{i % 50}", v, FacetsOf(i));
            if (i % 7 == 0) index.Remove($"c{(i + 3) % 50}");
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Empty(errors);
    }

    /// <summary>
    /// Recall@20 bound on a catalog of near-duplicates (one tight cluster: scores differ by ~1e-3, the size of an int8
    /// rounding error), where the int8 scan alone misses it (0.935 with this seed) and rescoring k·R candidates with the
    /// residual layer (error ≤ s1/508 per value) must reach it (1.0 with R = 2, 4 or 8 with this seed).
    /// </summary>
    private const double MinRescoredRecallAt20 = 0.99;

    /// <summary>
    /// |rescored score − exact f32 dot| for unit 64-vectors: residual rounding (Σ|q_j| · s2/2 ≤ 8 · 5e-6) plus the CPU scan's
    /// int16 query rounding (≤ 8 · max|x| / 65534 ≈ 4e-5); the int8 scan alone is off by ~1e-3.
    /// </summary>
    private const float RescoredScoreTolerance = 2e-4f;

    [Fact]
    public void Rescoring_reaches_a_recall_bound_the_int8_scan_alone_misses()
    {
        var rng = new Random(21);
        const int n = 3000, k = 20, queries = 20;
        var vectors = Clustered(rng, n, 1, 0.3f); // one tight cluster: many near-ties
        var ids = Enumerable.Range(0, n).Select(i => $"p{i}").ToArray();
        using var index = new ProductIndex(Dims, _scanner);
        index.UpsertBatch(ids, vectors, ids.Select((_, i) => FacetsOf(i)).ToArray());
        var q = new float[queries * Dims];
        for (int b = 0; b < queries; b++) vectors.AsSpan((b * 97 % n) * Dims, Dims).CopyTo(q.AsSpan(b * Dims)); // queries = products
        for (int i = 0; i < q.Length; i++) q[i] += 0.05f * Gaussian(rng);
        var filters = Enumerable.Repeat(ProductFilter.None, queries).ToArray();

        double RecallAt(int factor)
        {
            index.RescoreFactor = factor;
            var found = index.SearchBatch(q, k, filters);
            double hits = 0;
            for (int b = 0; b < queries; b++)
            {
                var exact = ExactTop(vectors, q.AsSpan(b * Dims, Dims), k, _ => true).Select(t => $"p{t.Id}").ToHashSet();
                hits += found[b].Count(h => exact.Contains(h.ProductId));
            }
            return hits / (queries * k);
        }

        double raw = RecallAt(0), rescored = RecallAt(ProductIndex.DefaultRescoreFactor);
        Assert.True(raw < MinRescoredRecallAt20, $"int8 alone reaches {raw}: the data set does not separate the two");
        Assert.True(rescored >= MinRescoredRecallAt20, $"rescored recall@{k} = {rescored} (int8 alone {raw})");
    }

    [Fact]
    public void Upsert_and_remove_keep_the_rescoring_layer_in_sync()
    {
        var (index, vectors, _) = Build(600);
        using var owned = index;
        var rng = new Random(9);
        var moved = Clustered(rng, 3, 3, 0.5f);
        index.Upsert("p7", moved.AsSpan(0, Dims), FacetsOf(7));                  // an existing slot rewritten
        Assert.True(index.Remove("p8"));
        index.Upsert("late", moved.AsSpan(Dims, Dims), FacetsOf(8));             // takes p8's freed slot
        index.UpsertBatch(["p9"], moved.AsSpan(2 * Dims, Dims), [FacetsOf(9)]);  // batch path
        var current = (float[])vectors.Clone();
        moved.AsSpan(0, Dims).CopyTo(current.AsSpan(7 * Dims));
        moved.AsSpan(2 * Dims, Dims).CopyTo(current.AsSpan(9 * Dims));
        var vectorOf = new Dictionary<string, float[]> { ["p7"] = moved[..Dims], ["late"] = moved[Dims..(2 * Dims)], ["p9"] = moved[(2 * Dims)..] };

        string path = Temp();
        index.Save(path);
        using var loaded = ProductIndex.Load(path, _scanner);
        foreach (var idx in new[] { index, loaded })
            foreach (var (id, v) in vectorOf)
            {
                // The moved product is its own best match, scored with its new vector to the rescoring precision.
                var hits = idx.Search(v, 5, ProductFilter.None);
                Assert.Equal(id, hits[0].ProductId);
                Assert.Equal(Dot(v, v), hits[0].Score, RescoredScoreTolerance);
                foreach (var h in hits.Skip(1))
                {
                    var other = h.ProductId == "late" ? vectorOf["late"] : current.AsSpan(int.Parse(h.ProductId[1..]) * Dims, Dims).ToArray();
                    Assert.Equal(Dot(v, other), h.Score, RescoredScoreTolerance);
                }
                var back = new float[Dims];
                Assert.True(idx.TryGetVector(id, back));
                float amax = v.Max(MathF.Abs);
                for (int j = 0; j < Dims; j++) Assert.True(MathF.Abs(back[j] - v[j]) <= amax / (127 * 254) * 1.01f, $"{id}[{j}]: {back[j]} vs {v[j]}");
            }

        static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        {
            double s = 0;
            for (int j = 0; j < a.Length; j++) s += (double)a[j] * b[j];
            return (float)s;
        }
    }

    [Fact]
    public void A_version_1_snapshot_loads_without_rescoring_precision_and_an_unknown_version_is_rejected()
    {
        var rng = new Random(2);
        var vectors = Clustered(rng, 40, 4, 0.5f);
        string path = Temp();
        // Version 1 records: id, facets, scale and int8 values, no residual layer (SNAPSHOT.md, version history).
        using (var file = new MemoryStream())
        {
            var w = new BinaryWriter(file);
            w.Write("ENGPIDX\0"u8);
            w.Write(1); w.Write(Dims); w.Write(40); w.Write(7L); w.Write(0);
            var q = new sbyte[Dims];
            for (int i = 0; i < 40; i++)
            {
                float scale = Engine.Core.Quant.Int8Vector.Quantize(vectors.AsSpan(i * Dims, Dims), q);
                var id = System.Text.Encoding.UTF8.GetBytes($"p{i}");
                w.Write((ushort)id.Length); w.Write(id);
                w.Write(FacetsOf(i).Category); w.Write(FacetsOf(i).Price); w.Write((byte)(FacetsOf(i).InStock ? 1 : 0)); w.Write(scale);
                w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(q.AsSpan()));
            }
            w.Flush();
            w.Write(System.Security.Cryptography.SHA256.HashData(file.ToArray()));
            File.WriteAllBytes(path, file.ToArray());
        }
        using (var loaded = ProductIndex.Load(path, _scanner))
        {
            Assert.Equal(40, loaded.Count);
            Assert.Equal(7, loaded.Version);
            Assert.True(loaded.LoadedWithoutResidual); // a catalog cache rebuilds such a file
            Assert.Equal("p12", loaded.Search(vectors.AsSpan(12 * Dims, Dims), 1, ProductFilter.None)[0].ProductId);
            loaded.Save(path); // rewritten as the current version
        }
        using (var again = ProductIndex.Load(path, _scanner))
        {
            Assert.Equal(40, again.Count);
            Assert.False(again.LoadedWithoutResidual);
        }
        Assert.Equal(ProductIndex.SnapshotVersion, BitConverter.ToInt32(File.ReadAllBytes(path), 8));

        var bytes = File.ReadAllBytes(path);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), 99);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => ProductIndex.Load(path, _scanner));
        Assert.Contains("version 99", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_corrupt_residual_layer_is_rejected_and_the_live_index_keeps_serving()
    {
        var (index, vectors, _) = Build(200);
        using var owned = index;
        string path = Temp();
        index.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length - 32 - 5] ^= 0x01; // inside the last record's residual values, before the checksum
        File.WriteAllBytes(path, bytes);
        var before = index.Search(vectors.AsSpan(0, Dims), 10, ProductFilter.None);
        var e = Assert.Throws<InvalidDataException>(() => ProductIndex.Load(path, _scanner));
        Assert.Contains("checksum", e.Message);
        Assert.Equal(200, index.Count);
        Assert.Equal(before, index.Search(vectors.AsSpan(0, Dims), 10, ProductFilter.None));
    }
}
