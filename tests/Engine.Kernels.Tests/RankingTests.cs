using Engine.Kernels;
using Engine.Kernels.Testing;

namespace Engine.Kernels.Tests;

/// <summary>
/// Similarity + top-k of <see cref="IlgpuVectorIndex"/>, both forms (wide scan + tile selection, and the previous f32 scan
/// + tree passes): against a brute-force scan in f64, and the wide form's selection against an exact scalar top-k of
/// the same scores (bit for bit, ties to the smaller index), including the overflow into the tree passes.
/// </summary>
[Collection("ilgpu")]
public class RankingTests
{

    public static TheoryData<string> Devices => Tests.Devices.Names;

    /// <summary>Devices × forms: (device, wide scan, tile selection): the default and the previous form.</summary>
    public static TheoryData<string, bool, bool> DeviceForms()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (string d in new[] { "cpu", "cuda" })
        {
            if (d == "cuda" && !Tests.Devices.CudaPresent) continue;
            data.Add(d, true, true);
            data.Add(d, false, false); // wide scan + tree passes: pinned exactly by the test below
        }
        return data;
    }

    [Theory, MemberData(nameof(DeviceForms))]
    public void Top_k_matches_a_brute_force_scan_with_and_without_a_filter(string device, bool wide, bool tiles)
    {
        var d = Tests.Devices.Get(device).Device;
        var rng = new Random(31);
        const int count = 4500, dims = 384, k = 20, batch = 2; // 4500 > one 2048 chunk: two selection passes
        var vectors = new sbyte[count * dims];
        for (int i = 0; i < vectors.Length; i++) vectors[i] = (sbyte)rng.Next(-127, 128);
        var scales = Enumerable.Range(0, count).Select(_ => 0.001f + 0.01f * (float)rng.NextDouble()).ToArray();
        var queries = Enumerable.Range(0, batch * dims).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var filter = new uint[(count + 31) / 32];
        for (int i = 0; i < filter.Length; i++) filter[i] = (uint)rng.Next() | 0x1u; // about half allowed

        using var index = new IlgpuVectorIndex(d, vectors, scales, dims) { WideScan = wide, TileSelect = tiles };
        double tolerance = wide ? KernelTolerances.WideScore : KernelTolerances.Score; // wide: int16 query
        foreach (bool filtered in new[] { false, true })
        {
            var ids = new int[batch * k];
            var scores = new float[batch * k];
            index.Search(queries, k, filtered ? filter : default, ids, scores);
            for (int b = 0; b < batch; b++)
            {
                var expected = Enumerable.Range(0, count)
                    .Where(v => !filtered || ((filter[v >> 5] >> (v & 31)) & 1) != 0)
                    .Select(v => (Id: v, Score: Score(vectors, scales, queries, b, v, dims)))
                    .OrderByDescending(e => e.Score).ThenBy(e => e.Id).Take(k).ToArray();
                double scale = Math.Abs(expected[0].Score);
                for (int r = 0; r < k; r++)
                {
                    int id = ids[b * k + r];
                    Assert.InRange(id, 0, count - 1);
                    Assert.True(!filtered || ((filter[id >> 5] >> (id & 31)) & 1) != 0, $"filtered-out vector {id} returned");
                    Assert.True(Math.Abs(scores[b * k + r] - expected[r].Score) <= tolerance * scale, $"rank {r}: {scores[b * k + r]} vs {expected[r].Score}");
                    Assert.True(Math.Abs(Score(vectors, scales, queries, b, id, dims) - scores[b * k + r]) <= tolerance * scale, $"rank {r}: id {id} has another score");
                }
            }
        }
    }

    [Theory, MemberData(nameof(Devices))]
    public void Fewer_allowed_vectors_than_k_pad_with_minus_one(string device)
    {
        var d = Tests.Devices.Get(device).Device;
        const int count = 40, dims = 8, k = 5;
        var vectors = Enumerable.Range(0, count * dims).Select(i => (sbyte)(i % 13 - 6)).ToArray();
        var scales = Enumerable.Repeat(1f, count).ToArray();
        using var index = new IlgpuVectorIndex(d, vectors, scales, dims);
        var filter = new uint[] { (1u << 3) | (1u << 17), 0 };
        var ids = new int[k];
        var scores = new float[k];
        index.Search(Enumerable.Repeat(0.5f, dims).ToArray(), k, filter, ids, scores);
        Assert.Equal(new[] { 3, 17 }.Order(), ids[..2].Order());
        Assert.Equal(new[] { -1, -1, -1 }, ids[2..]);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[dims], 0, default, ids, scores));
    }

    /// <summary>Rows for the exact tests: distinct random rows, 40 copies of 500 rows (ties everywhere), or one row repeated.</summary>
    public enum Rows { Distinct, Duplicated, AllEqual }

    public static TheoryData<string, Rows> ExactCases()
    {
        var data = new TheoryData<string, Rows>();
        foreach (string d in new[] { "cpu", "cuda" })
        {
            if (d == "cuda" && !Tests.Devices.CudaPresent) continue;
            foreach (var rows in Enum.GetValues<Rows>()) data.Add(d, rows);
        }
        data.Add("cpu8", Rows.Distinct); // 8-lane warps: CUDA's 8 lanes per vector (one case: wide groups are slow here)
        // CUDA's launch shapes: 256-thread scan groups (32 vectors per step) and the 512-thread tile selection.
        data.Add(Tests.Devices.CudaShaped, Rows.Duplicated); // ties across tiles
        return data;
    }

    private static readonly Lazy<IlgpuDevice> _cpu8 = new(() => IlgpuDevice.CreateCpu(threadsPerWarp: 8, warpsPerGroup: 1));

    // A CUDA-shaped device of its own, not the backend's: ILGPU's CPU accelerator runs every launch with as many threads
    // as its largest group so far, and the 512-thread selection would slow every later backend launch. One multiprocessor:
    // the scan's groups share nothing but their outputs, so running two at once would only double the threads.
    private static readonly Lazy<IlgpuDevice> _cudaShaped = new(() => IlgpuDevice.CreateCudaShapedCpu(multiprocessors: 1));

    /// <summary>
    /// The wide form's result equals an exact scalar top-k of the scores <see cref="SimilarityKernel.WideScore"/> gives
    /// (the kernel's arithmetic, so bit for bit): ids and scores, ties to the smaller index, filtered rows never returned,
    /// for the tile selection and for the tree passes. On "cpu8" the 8-lanes-per-vector path of CUDA runs, at 384 values
    /// (24 chunks of 16: each lane's two-loads-in-flight step and its single tail).
    /// AllEqual makes every allowed score tie, which overflows the tile selection into the tree passes.
    /// </summary>
    [Theory, MemberData(nameof(ExactCases))]
    public void Wide_top_k_equals_an_exact_scalar_top_k_of_its_scores(string device, Rows kind)
    {
        var d = device switch { "cpu8" => _cpu8.Value, Tests.Devices.CudaShaped => _cudaShaped.Value, _ => Tests.Devices.Get(device).Device };
        var rng = new Random(41 + (int)kind);
        bool wideRows = device is "cpu8" or "cuda" or Tests.Devices.CudaShaped;
        bool slow = device is "cpu8" or Tests.Devices.CudaShaped;
        // 6 or 24 tiles of 256; AllEqual needs more allowed rows than TopKSelectKernel.MaxCandidates.
        int count = slow ? 1500 : 6000, dims = wideRows ? 384 : 48, k = slow ? 4 : 6;
        const int batch = 2;
        var vectors = new sbyte[count * dims];
        var scales = new float[count];
        var distinct = new sbyte[500 * dims]; // Duplicated: 12 copies of each
        for (int i = 0; i < distinct.Length; i++) distinct[i] = (sbyte)rng.Next(-3, 4);
        for (int v = 0; v < count; v++)
        {
            int source = kind switch { Rows.Distinct => -1, Rows.Duplicated => (v * 7) % 500, _ => 0 };
            for (int j = 0; j < dims; j++) vectors[v * dims + j] = source < 0 ? (sbyte)rng.Next(-127, 128) : distinct[source * dims + j];
            scales[v] = source < 0 ? 0.001f + 0.01f * (float)rng.NextDouble() : 0.5f;
        }
        var queries = Enumerable.Range(0, batch * dims).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var filter = new uint[(count + 31) / 32];
        for (int i = 0; i < filter.Length; i++) filter[i] = (uint)rng.Next() | (uint)rng.Next(); // ~75 % allowed

        using var index = new IlgpuVectorIndex(d, vectors, scales, dims);
        Assert.True(index.WideScanApplies);
        if (d.IsCudaShaped) Assert.Equal(IlgpuVectorIndex.SelectGroupSize, index.SelectGroup); // the 512-thread selection runs
        foreach (bool tiles in new[] { true, false })
        foreach (bool filtered in new[] { false, true })
        {
            index.WideScan = true;
            index.TileSelect = tiles;
            var ids = new int[batch * k];
            var scores = new float[batch * k];
            index.Search(queries, k, filtered ? filter : default, ids, scores);
            Assert.Equal(tiles && kind == Rows.AllEqual, index.LastSelectFellBack);
            if (tiles && kind != Rows.AllEqual) Assert.Equal(2, index.LastLaunches); // scan + select
            var q16 = new short[dims];
            for (int b = 0; b < batch; b++)
            {
                float qs = SimilarityKernel.QuantizeQuery(queries.AsSpan(b * dims, dims), q16);
                var expected = Enumerable.Range(0, count)
                    .Where(v => !filtered || ((filter[v >> 5] >> (v & 31)) & 1) != 0)
                    .Select(v => (Id: v, Score: SimilarityKernel.WideScore(q16, qs, vectors.AsSpan(v * dims, dims), scales[v])))
                    .OrderByDescending(e => e.Score).ThenBy(e => e.Id).Take(k).ToArray();
                Assert.Equal(expected.Select(e => e.Id), ids.Skip(b * k).Take(k));
                Assert.Equal(expected.Select(e => e.Score), scores.Skip(b * k).Take(k));
            }
        }
    }

    [Theory, MemberData(nameof(DeviceForms))]
    public void Few_allowed_vectors_across_many_tiles_pad_with_minus_one(string device, bool wide, bool tiles)
    {
        var d = Tests.Devices.Get(device).Device;
        const int count = 3000, dims = 16, k = 8; // 12 tiles; 3 allowed rows in different tiles
        var vectors = Enumerable.Range(0, count * dims).Select(i => (sbyte)(i % 11 - 5)).ToArray();
        var scales = Enumerable.Repeat(1f, count).ToArray();
        using var index = new IlgpuVectorIndex(d, vectors, scales, dims) { WideScan = wide, TileSelect = tiles };
        var filter = new uint[(count + 31) / 32];
        foreach (int v in new[] { 5, 1700, 2999 }) filter[v >> 5] |= 1u << (v & 31);
        var ids = new int[k];
        var scores = new float[k];
        index.Search(Enumerable.Range(0, dims).Select(j => j - 7.5f).ToArray(), k, filter, ids, scores);
        Assert.Equal(new[] { 5, 1700, 2999 }, ids[..3].Order());
        Assert.All(ids[3..], id => Assert.Equal(-1, id));
        Assert.All(scores[3..], s => Assert.Equal(float.NegativeInfinity, s));
        Assert.False(index.LastSelectFellBack);
    }

    [Fact]
    public void Query_quantization_maps_the_largest_value_to_the_int16_limit_and_round_trips_within_half_a_step()
    {
        var rng = new Random(3);
        var q = Enumerable.Range(0, 384).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var dst = new short[384];
        float scale = SimilarityKernel.QuantizeQuery(q, dst);
        Assert.Equal(short.MaxValue, dst.Max(x => Math.Abs((int)x)));
        for (int j = 0; j < q.Length; j++) Assert.True(Math.Abs(q[j] - dst[j] * scale) <= 0.51 * scale, $"value {j}");
        Assert.Equal(0f, SimilarityKernel.QuantizeQuery(new float[8], dst));
        Assert.True(SimilarityKernel.QueryMax(4096) * 127L * 4096 <= int.MaxValue); // long vectors cannot overflow the int32 dot
    }

    private static double Score(sbyte[] m, float[] scales, float[] q, int b, int v, int dims)
    {
        double s = 0;
        for (int j = 0; j < dims; j++) s += (double)q[b * dims + j] * m[v * dims + j];
        return s * scales[v];
    }
}
