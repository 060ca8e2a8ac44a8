using Engine.Kernels;
using Engine.Kernels.Testing;

namespace Engine.Kernels.Tests;

/// <summary>Similarity + top-k of <see cref="IlgpuVectorIndex"/> against a brute-force scan in f64.</summary>
[Collection("ilgpu")]
public class RankingTests
{

    public static TheoryData<string> Devices => Tests.Devices.Names;

    [Theory, MemberData(nameof(Devices))]
    public void Top_k_matches_a_brute_force_scan_with_and_without_a_filter(string device)
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

        using var index = new IlgpuVectorIndex(d, vectors, scales, dims);
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
                    Assert.True(Math.Abs(scores[b * k + r] - expected[r].Score) <= KernelTolerances.Score * scale, $"rank {r}: {scores[b * k + r]} vs {expected[r].Score}");
                    Assert.True(Math.Abs(Score(vectors, scales, queries, b, id, dims) - scores[b * k + r]) <= KernelTolerances.Score * scale, $"rank {r}: id {id} has another score");
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

    private static double Score(sbyte[] m, float[] scales, float[] q, int b, int v, int dims)
    {
        double s = 0;
        for (int j = 0; j < dims; j++) s += (double)q[b * dims + j] * m[v * dims + j];
        return s * scales[v];
    }
}
