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
    private int[] _positions = new int[16]; // copy of the caller's positions for the workers

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
        if (_positions.Length < n) _positions = new int[Math.Max(n, 2 * _positions.Length)];
        int maxLen = 0;
        long macs = 0;
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            if ((uint)pos >= (uint)c.ContextLength) throw new ArgumentOutOfRangeException(nameof(positions), $"position {pos} outside the context of {c.ContextLength}");
            _positions[r] = pos;
            maxLen = Math.Max(maxLen, pos + 1);
            macs += 2L * (pos + 1) * heads * headDim;
        }
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i].Ensure(Math.Max(maxLen, headDim));

        var job = _attentionJob;
        job.Keys = c.Keys(layer);
        job.Values = c.Values(layer);
        job.Q = qb.Ptr;
        job.Output = ob.Ptr;
        job.N = n;
        job.Heads = heads;
        job.Group = heads / kvHeads;
        job.HeadDim = headDim;
        job.KvDim = c.KvDim;
        job.Next = 0;
        if (macs < InlineAttentionMacs) job.Execute(0, 1);
        else _pool.Run(job);
    }

    /// <summary>Attention as a pool job: one unit is one (row, head); workers take units from a shared counter.</summary>
    private sealed class AttentionJob(CpuBackend owner) : WorkerPool.Job
    {
        public float* Keys;   // [ctx, KvDim] f32
        public float* Values; // [ctx, KvDim] f32
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
