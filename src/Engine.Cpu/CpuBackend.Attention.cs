using System.Runtime.Intrinsics;
using Engine.Core.Backend;
using Engine.Cpu.Kernels;
using Engine.Cpu.Threading;

namespace Engine.Cpu;

public sealed unsafe partial class CpuBackend
{
    // Below this many multiply-adds (q·k plus p·v over all rows and heads) attention runs on the caller.
    private const long InlineAttentionMacs = 1 << 14;

    private readonly AttentionJob _attentionJob;
    private int[] _positions = new int[16]; // copy of the caller's positions for the workers, [n]
    private nint[] _rowKeys = new nint[16];   // per row: the keys of its sequence's layer, [ctx, KvDim] f32
    private nint[] _rowValues = new nint[16]; // per row: the values of its sequence's layer

    public void Attention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer output, int n, ReadOnlySpan<int> positions,
                          int heads, int kvHeads, int headDim)
    {
        var c = Kv(cache);
        var qb = Buf(q);
        var ob = Buf(output);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"{heads} query heads cannot share {kvHeads} KV heads evenly", nameof(kvHeads));
        if (kvHeads * headDim != c.KvDim)
            throw new ArgumentException($"{kvHeads} KV heads of {headDim} do not match the cache's KV width {c.KvDim}", nameof(kvHeads));
        if (positions.Length < n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        Need(qb, (long)n * heads * headDim, nameof(q));
        Need(ob, (long)n * heads * headDim, nameof(output));
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            if ((uint)pos >= (uint)c.ContextLength) throw new ArgumentOutOfRangeException(nameof(positions), $"position {pos} outside the context of {c.ContextLength}");
        }
        EnsureAttentionRows(n);
        nint keys = (nint)c.Keys(layer), values = (nint)c.Values(layer);
        for (int r = 0; r < n; r++)
        {
            _positions[r] = positions[r];
            _rowKeys[r] = keys;
            _rowValues[r] = values;
        }
        RunAttention(qb.Ptr, ob.Ptr, n, heads, kvHeads, headDim);
    }

    /// <summary>
    /// All segments in one call: RoPE and the KV store per segment on this thread (a few microseconds), then every
    /// segment's (row, head) units in ONE pool job, instead of one job per segment and layer (each release of the
    /// workers costs about a microsecond on a quiet machine and far more on a busy one). Per (row, head) the
    /// arithmetic is <see cref="Attention"/>'s, so the result equals the per-segment form bit for bit.
    /// </summary>
    public void RopeStoreKvAttentionBatch(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int layer,
                                          DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, ReadOnlySpan<int> positions,
                                          int heads, int kvHeads, int headDim, float freqBase, RopeStyle style)
    {
        int rows = BatchSegments.Check(caches, offsets, counts, layer, q, k, v, output, positions, heads, kvHeads, headDim);
        CheckRope(headDim, style);
        var qb = Buf(q);
        var kb = Buf(k);
        var vb = Buf(v);
        var ob = Buf(output);
        foreach (var cache in caches)
            if (cache is not null) Kv(cache); // a cache of another backend is an ArgumentException before any work
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        EnsureAttentionRows(rows);

        // The units of the job are the covered rows, packed: row i of the job is buffer row rowOf[i].
        int units = 0;
        bool packed = true;
        for (int s = 0; s < caches.Length; s++)
        {
            int o = offsets[s], c = counts[s];
            if (c == 0) continue;
            var cache = (CpuKvCache)caches[s];
            float* keys = cache.Keys(layer), values = cache.Values(layer);
            var p = positions.Slice(o, c);
            RopeRows(qb.Ptr + (long)o * qWidth, c, heads, headDim, p, freqBase, style);
            RopeRows(kb.Ptr + (long)o * kvWidth, c, kvHeads, headDim, p, freqBase, style);
            StoreRows(keys, values, kvWidth, kb.Ptr + (long)o * kvWidth, vb.Ptr + (long)o * kvWidth, p);
            packed &= o == units;
            for (int i = 0; i < c; i++)
            {
                _positions[o + i] = p[i];
                _rowKeys[o + i] = (nint)keys;
                _rowValues[o + i] = (nint)values;
            }
            units += c;
        }
        if (units == 0) return;
        if (packed)
        {
            RunAttention(qb.Ptr, ob.Ptr, units, heads, kvHeads, headDim);
            return;
        }
        // Segments with gaps between them or out of order (not what BatchedDecoder passes): one job per segment.
        for (int s = 0; s < caches.Length; s++)
        {
            int o = offsets[s], c = counts[s];
            if (c == 0) continue;
            // rows o..o+c-1 of the per-row tables hold this segment; the job reads rows 0..c-1 of its q/output,
            // so shift the tables' rows down to 0 (segments are disjoint, and each is handled before the next shifts).
            for (int i = 0; i < c; i++)
            {
                _positions[i] = positions[o + i];
                _rowKeys[i] = (nint)((CpuKvCache)caches[s]).Keys(layer);
                _rowValues[i] = (nint)((CpuKvCache)caches[s]).Values(layer);
            }
            RunAttention(qb.Ptr + (long)o * qWidth, ob.Ptr + (long)o * qWidth, c, heads, kvHeads, headDim);
        }
    }

    private void EnsureAttentionRows(int n)
    {
        if (_positions.Length >= n) return;
        int size = Math.Max(n, 2 * _positions.Length);
        _positions = new int[size];
        _rowKeys = new nint[size];
        _rowValues = new nint[size];
    }

    /// <summary>Attention of rows 0..n-1 of q into output, each row against the cache of <c>_rowKeys/_rowValues</c> up to <c>_positions</c>.</summary>
    private void RunAttention(float* q, float* output, int n, int heads, int kvHeads, int headDim)
    {
        int maxLen = 0;
        long macs = 0;
        for (int r = 0; r < n; r++)
        {
            int len = _positions[r] + 1;
            maxLen = Math.Max(maxLen, len);
            macs += 2L * len * heads * headDim;
        }
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i].Ensure(Math.Max(maxLen, headDim));

        var job = _attentionJob;
        job.Q = q;
        job.Output = output;
        job.N = n;
        job.Heads = heads;
        job.Group = heads / kvHeads;
        job.HeadDim = headDim;
        job.KvDim = kvHeads * headDim;
        job.Next = 0;
        if (macs < InlineAttentionMacs) job.Execute(0, 1);
        else _pool.Run(job);
    }

    /// <summary>Attention as a pool job: one unit is one (row, head); workers take units from a shared counter.</summary>
    private sealed class AttentionJob(CpuBackend owner) : WorkerPool.Job
    {
        public float* Q;      // [N, Heads * HeadDim] f32
        public float* Output; // [N, Heads * HeadDim] f32
        public int N, Heads, Group, HeadDim, KvDim;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            float* scores = owner._workerScratch[worker].Ptr; // [len] f32
            bool vector = owner.Path != CpuKernelPath.Scalar;
            int units = N * Heads;
            float scale = 1f / MathF.Sqrt(HeadDim);
            int u;
            while ((u = Interlocked.Increment(ref Next) - 1) < units)
            {
                int r = u / Heads, h = u % Heads;
                int len = owner._positions[r] + 1;
                float* Keys = (float*)owner._rowKeys[r];     // [ctx, KvDim] f32 of row r's sequence
                float* Values = (float*)owner._rowValues[r];
                float* qh = Q + (long)u * HeadDim;
                float* oh = Output + (long)u * HeadDim;
                int kvOffset = h / Group * HeadDim;
                float max = float.NegativeInfinity;
                for (int t = 0; t < len; t++)
                {
                    float* kt = Keys + (long)t * KvDim + kvOffset;
                    float s = (vector ? FloatKernels.Dot(qh, kt, HeadDim) : FloatKernels.DotScalar(qh, kt, HeadDim)) * scale;
                    scores[t] = s;
                    max = MathF.Max(max, s);
                }
                // softmax in f32, as the reference (and ggml_soft_max) does
                float sum = 0;
                for (int t = 0; t < len; t++)
                {
                    float e = MathF.Exp(scores[t] - max);
                    scores[t] = e;
                    sum += e;
                }
                new Span<float>(oh, HeadDim).Clear();
                for (int t = 0; t < len; t++)
                {
                    float p = scores[t] / sum;
                    float* vt = Values + (long)t * KvDim + kvOffset;
                    int i = 0;
                    if (vector)
                    {
                        var vp = Vector256.Create(p);
                        for (; i + 8 <= HeadDim; i += 8)
                            Vector256.MultiplyAddEstimate(vp, Vector256.Load(vt + i), Vector256.Load(oh + i)).Store(oh + i);
                    }
                    for (; i < HeadDim; i++) oh[i] += p * vt[i];
                }
            }
        }
    }
}
