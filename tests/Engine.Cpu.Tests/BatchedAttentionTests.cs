using Engine.Core.Backend;

namespace Engine.Cpu.Tests;

/// <summary>
/// <see cref="IComputeBackend.RopeStoreKvAttentionBatch"/>: on each backend, equal to
/// <see cref="IComputeBackend.RopeStoreKvAttention"/> run per segment (same arithmetic per row and head, so
/// bit-identical), across steps that mix prompt chunks, decode rows and an empty segment; and the CPU backend's
/// batched form against the reference's within <see cref="Tolerances.Attention"/>.
/// </summary>
public sealed class BatchedAttentionTests
{
    public static TheoryData<CpuKernelPath, int> Configurations() => CpuBackendTests.Configurations();

    private const int Layers = 2, Context = 40;

    // Steps of (counts per stream): prompts of different lengths, an empty segment, then decode rows,
    // then a chunk for one stream beside decode rows of the others.
    private static readonly int[][] Steps = [[5, 0, 3, 7], [1, 2, 1, 1], [1, 1, 1, 1], [6, 1, 0, 1], [1, 1, 1, 1]];

    [Theory, MemberData(nameof(Configurations))]
    public void Batch_equals_per_segment_form_and_the_reference(CpuKernelPath path, int threads)
    {
        using var h = new BackendPair(path, threads);
        foreach (var (heads, kvHeads, headDim) in new[] { (4, 2, 16), (9, 3, 64), (3, 1, 12) })
            foreach (var style in new[] { RopeStyle.Normal, RopeStyle.NeoX })
            {
                int streams = Steps[0].Length;
                var backends = new IComputeBackend[] { h.Cpu, h.Reference };
                // [backend][form] caches: form 0 batched, form 1 per segment
                var caches = backends.Select(be => new[] { Alloc(be), Alloc(be) }).ToArray();
                var filled = new int[streams];
                foreach (var counts in Steps)
                {
                    int n = counts.Sum();
                    var offsets = new int[streams];
                    var positions = new int[n];
                    for (int s = 0, row = 0; s < streams; s++)
                    {
                        offsets[s] = row;
                        for (int i = 0; i < counts[s]; i++) positions[row++] = filled[s] + i;
                        filled[s] += counts[s];
                    }
                    int qw = heads * headDim, kw = kvHeads * headDim;
                    var q = h.RandomFloats(n * qw, 3f);
                    var k = h.RandomFloats(n * kw, 1f);
                    var v = h.RandomFloats(n * kw, 1f);
                    var outs = new float[2][][];
                    for (int b = 0; b < 2; b++)
                    {
                        var be = backends[b];
                        outs[b] = new float[2][];
                        for (int form = 0; form < 2; form++)
                        {
                            using var qb = h.Upload(be, q);
                            using var kb = h.Upload(be, k);
                            using var vb = h.Upload(be, v);
                            using var ob = be.Allocate(n * qw);
                            if (form == 0)
                            {
                                be.RopeStoreKvAttentionBatch(caches[b][0], offsets, counts, 1, qb, kb, vb, ob, positions,
                                    heads, kvHeads, headDim, 10000f, style);
                            }
                            else
                            {
                                for (int s = 0; s < streams; s++)
                                {
                                    if (counts[s] == 0) continue;
                                    int o = offsets[s], c = counts[s];
                                    using var qs = qb.Slice(o * qw, c * qw);
                                    using var ks = kb.Slice(o * kw, c * kw);
                                    using var vs = vb.Slice(o * kw, c * kw);
                                    using var os = ob.Slice(o * qw, c * qw);
                                    be.RopeStoreKvAttention(caches[b][1][s], 1, qs, ks, vs, os, c, positions.AsSpan(o, c),
                                        heads, kvHeads, headDim, 10000f, style);
                                }
                            }
                            outs[b][form] = new float[n * qw];
                            be.Read(ob, outs[b][form]);
                        }
                        Assert.True(outs[b][0].AsSpan().SequenceEqual(outs[b][1]),
                            $"{be.Name}: batched differs from per-segment, steps [{string.Join(",", counts)}] heads={heads} kv={kvHeads} d={headDim} {style} ({h.Label})");
                    }
                    double err = Tolerances.NormalizedError(outs[0][0], outs[1][0]);
                    Assert.True(err <= Tolerances.Attention,
                        $"batched attention [{string.Join(",", counts)}] heads={heads} kv={kvHeads} d={headDim} {style}: normalized error {err:E3} above {Tolerances.Attention:E1} ({h.Label})");
                }
                foreach (var set in caches) foreach (var form in set) foreach (var c in form) c.Dispose();

                KvCache[] Alloc(IComputeBackend be) =>
                    Enumerable.Range(0, streams).Select(_ => be.AllocateKvCache(Layers, Context, kvHeads * headDim)).ToArray();
            }
    }

    [Fact]
    public void Bad_segments_throw_before_any_cache_is_touched()
    {
        using var h = new BackendPair(CpuKernelPath.Vector256, 1);
        foreach (IComputeBackend be in new IComputeBackend[] { h.Cpu, h.Reference })
        {
            const int heads = 2, kvHeads = 1, headDim = 8, n = 4;
            var caches = new[] { be.AllocateKvCache(1, 8, kvHeads * headDim), be.AllocateKvCache(1, 8, kvHeads * headDim) };
            var qHost = h.RandomFloats(n * heads * headDim, 1f);
            var kHost = h.RandomFloats(n * kvHeads * headDim, 1f);
            using var q = be.Allocate(qHost.Length);
            using var k = be.Allocate(kHost.Length);
            using var o = be.Allocate(n * heads * headDim);
            int[] positions = [0, 1, 0, 1];

            void Run(int[] offsets, int[] counts, int[] pos, int layer = 0, KvCache[]? cs = null)
            {
                be.Write(q, qHost); // the call rotates q and k in place
                be.Write(k, kHost);
                be.RopeStoreKvAttentionBatch(cs ?? caches, offsets, counts, layer, q, k, k, o, pos, heads, kvHeads, headDim, 10000f, RopeStyle.Normal);
            }

            Assert.Throws<ArgumentException>(() => Run([0], [2, 2], positions));                 // spans disagree
            Assert.Throws<ArgumentException>(() => Run([0, 1], [2, 2], positions));              // overlapping rows
            Assert.Throws<ArgumentException>(() => Run([0, 3], [2, 2], positions));              // past the buffers
            Assert.Throws<ArgumentOutOfRangeException>(() => Run([0, 2], [2, 2], [0, 1, 0, 8])); // position past the context
            Assert.Throws<ArgumentOutOfRangeException>(() => Run([0, 2], [2, 2], positions, layer: 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => Run([0, -2], [2, 2], positions));
            using (var wide = be.AllocateKvCache(1, 8, 2 * headDim))
                Assert.Throws<ArgumentException>(() => Run([0, 2], [2, 2], positions, cs: [caches[0], wide]));

            // The failing calls stored nothing (each would have stored segment 0 at positions 0 and 1 first):
            // a valid call at positions 2 and 3 attends over 0..3 and sees zeros there, as on a fresh cache.
            var fresh = be.AllocateKvCache(1, 8, kvHeads * headDim);
            var a = new float[n * heads * headDim];
            var b = new float[n * heads * headDim];
            Run([0], [2], [2, 3, 0, 0], cs: [caches[0]]);
            be.Read(o, a);
            be.Write(o, new float[b.Length]);
            Run([0], [2], [2, 3, 0, 0], cs: [fresh]);
            be.Read(o, b);
            Assert.True(a.Any(x => x != 0), be.Name);
            Assert.Equal(b, a);
            foreach (var c in caches) c.Dispose();
            fresh.Dispose();
        }
    }
}
