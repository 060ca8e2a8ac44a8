using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of a batched (continuous batching) RoPE + KV store + attention launch.</summary>
public struct BatchAttentionParams
{
    /// <summary>Rows of the step (every segment's rows; rows of no segment have position -1 and are skipped).</summary>
    public int N;

    public int Heads, KvHeads, HeadDim, KvDim;

    /// <summary>The decoder layer: each row's cache base plus layer * contextLength * kvDim is where its layer starts.</summary>
    public int Layer;

    /// <summary>RoPE style: 1 NeoX (halves), 0 Normal (adjacent pairs).</summary>
    public int NeoX;

    /// <summary>1: also quantize the output to Q8_0 (headDim % 32 == 0) for the output projection.</summary>
    public int Quantize;

    /// <summary>Chunks of <see cref="ChunkLength"/> positions per (row, head): grid Y of the split launch is N × Chunks.</summary>
    public int Chunks;

    /// <summary>Positions per chunk (≤ <see cref="AttentionKernel.MaxChunk"/>).</summary>
    public int ChunkLength;

    /// <summary>1 / sqrt(headDim).</summary>
    public float Scale;
}

/// <summary>
/// RoPE, KV store and causal attention for the rows of many streams in one step (continuous batching), each row
/// against its own stream's KV cache, in two or three launches whatever the number of streams: <see cref="KernelRopeStore"/>
/// (every row's q and k rotated, k/v stored), then either <see cref="KernelFlash"/> (one launch: online softmax per chunk,
/// the last chunk of a row merges) or <see cref="KernelSplit"/> (grid X = head, grid Y = row × chunk of positions: each live
/// chunk's max, sum of exponentials and unnormalized Σ e·v) and <see cref="KernelCombine"/> (grid X = head, grid Y = row:
/// the merge, and the output's Q8_0 form). The caches must be addressable from one kernel,
/// so they are sub-allocations of one pooled device buffer (IlgpuBackend.Batch.cs); each row reads where its cache
/// starts from a small table uploaded once per step:
/// <c>rows [n, <see cref="RowFields"/>] int = (position, cache base low 32 bits, cache base high 32 bits, context length)</c>.
/// </summary>
public static class BatchAttentionKernel
{
    /// <summary>Ints per row in the row table.</summary>
    public const int RowFields = 4;

    /// <summary>Where layer <paramref name="layer"/> of row <paramref name="r"/>'s cache starts in the pool (floats).</summary>
    private static long LayerBase(ArrayView<int> rows, int r, int layer, int kvDim)
    {
        long b = (long)(uint)rows[r * RowFields + 1] | ((long)rows[r * RowFields + 2] << 32);
        return b + (long)layer * rows[r * RowFields + 3] * kvDim;
    }

    /// <summary>
    /// One thread per dimension pair of every q head and k head of every row (<c>n * (heads + kvHeads) * headDim / 2</c>):
    /// q and k rotated in place at the row's position; the k-head threads also store the rotated pair and v's pair in the
    /// row's cache. Rows of no segment (position -1) are left alone.
    /// </summary>
    /// <param name="q">[n, heads * headDim] f32, rotated in place</param>
    /// <param name="k">[n, kvDim] f32, rotated in place</param>
    /// <param name="v">[n, kvDim] f32</param>
    /// <param name="keys">the key pool (every cache: [layers, contextLength, kvDim] f32 from its base); values likewise</param>
    /// <param name="rows">[n, RowFields] int row table</param>
    /// <param name="freq">[headDim / 2] f32 RoPE frequencies</param>
    public static void KernelRopeStore(Index1D idx, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<float> keys, ArrayView<float> values, ArrayView<int> rows, ArrayView<float> freq, BatchAttentionParams p)
    {
        int half = p.HeadDim / 2;
        int i = idx % half;
        int rh = idx / half;           // r * (heads + kvHeads) + head
        int all = p.Heads + p.KvHeads;
        int r = rh / all;
        int h = rh - r * all;          // q heads first, then k heads
        int pos = rows[r * RowFields];
        if (pos < 0) return;
        RopeKernel.RotatePairAndStore(q, k, v, keys, values, freq, r, h, i, pos, LayerBase(rows, r, p.Layer, p.KvDim) + (long)pos * p.KvDim,
            p.Heads, p.HeadDim, p.KvDim, p.NeoX != 0);
    }

    /// <summary>
    /// Split-position attention of every row (grid X = head, grid Y = row × <see cref="BatchAttentionParams.Chunks"/> + chunk):
    /// the group of a live chunk (positions [chunk × ChunkLength, …) ∩ [0, position]) writes its max score m, its sum of
    /// exp(s - m) and its Σ exp(s - m) · v to <paramref name="partials"/>; dead chunks and rows of no segment return at once.
    /// Scores stay in shared memory. Reads the cache only (the store ran in <see cref="KernelRopeStore"/> before), so the rows
    /// of one prefill segment see each other causally.
    /// </summary>
    /// <param name="q">[n, heads * headDim] f32, rotated</param>
    /// <param name="partials">[n, heads, chunks, headDim] f32 accumulators, then [n, heads, chunks, 2] f32 (max, sum)</param>
    public static void KernelSplit(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> partials,
        ArrayView<int> rows, BatchAttentionParams p)
    {
        var qs = SharedMemory.Allocate<float>(AttentionKernel.MaxHeadDim);
        var sc = SharedMemory.Allocate<float>(AttentionKernel.MaxChunk);
        var partial = SharedMemory.Allocate<float>(1024);
        int tid = Group.IdxX;
        int g = Group.DimX;
        int h = Grid.IdxX;
        int r = Grid.IdxY / p.Chunks;
        int chunk = Grid.IdxY - r * p.Chunks;
        int d = p.HeadDim;
        int pos = rows[r * RowFields];
        int t0 = chunk * p.ChunkLength;
        // Dead chunk or unused row: uniform over the group, so no barrier is skipped by part of it.
        if (pos < 0 || t0 > pos) return;
        int t1 = t0 + p.ChunkLength < pos + 1 ? t0 + p.ChunkLength : pos + 1;
        int kvh = h / (p.Heads / p.KvHeads);
        long qBase = ((long)r * p.Heads + h) * d;
        long kvOff = LayerBase(rows, r, p.Layer, p.KvDim) + (long)kvh * d;

        for (int i = tid; i < d; i += g) qs[i] = q[qBase + i];
        Group.Barrier();

        // (1) this chunk's scores (shared memory) and their max; thread tid owns positions t0 + tid, t0 + tid + g, ...
        float localMax = float.NegativeInfinity;
        for (int t = t0 + tid; t < t1; t += g)
        {
            float s = Dot(qs, keys, kvOff + (long)t * p.KvDim, d) * p.Scale;
            sc[t - t0] = s;
            localMax = Reductions.Max(localMax, s);
        }
        float max = Reductions.GroupMax(localMax);

        // (2) exponentials and their sum.
        float localSum = 0;
        for (int t = t0 + tid; t < t1; t += g)
        {
            float e = ILGPU.Algorithms.XMath.Exp(sc[t - t0] - max);
            sc[t - t0] = e;
            localSum += e;
        }
        float sum = Reductions.GroupSum(localSum);

        // (3) Σ e_t · v_t: slice j of the group sums positions t0 + j, t0 + j + slices, ... for its dimensions.
        int slices = g >= d ? g / d : 1;
        int slice = g >= d ? tid / d : 0;
        int i0 = g >= d ? tid - slice * d : tid;
        int iStep = g >= d ? d : g;
        if (slice < slices)
        {
            for (int i = i0; i < d; i += iStep)
            {
                long vi = kvOff + i;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                int t = t0 + slice;
                long vStep = (long)slices * p.KvDim;
                for (; t + 3 * slices < t1; t += 4 * slices)
                {
                    long v0 = vi + (long)t * p.KvDim;
                    int s0 = t - t0;
                    a0 += sc[s0] * values[v0];
                    a1 += sc[s0 + slices] * values[v0 + vStep];
                    a2 += sc[s0 + 2 * slices] * values[v0 + 2 * vStep];
                    a3 += sc[s0 + 3 * slices] * values[v0 + 3 * vStep];
                }
                for (; t < t1; t += slices)
                    a0 += sc[t - t0] * values[vi + (long)t * p.KvDim];
                partial[slice * d + i] = (a0 + a1) + (a2 + a3);
            }
        }
        Group.Barrier();

        long cell = ((long)r * p.Heads + h) * p.Chunks + chunk;
        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int j = 0; j < slices; j++) acc += partial[j * d + i];
            partials[cell * d + i] = acc;
        }
        if (tid == 0)
        {
            long ms = (long)p.N * p.Heads * p.Chunks * d + cell * 2;
            partials[ms] = max;
            partials[ms + 1] = sum;
        }
    }

    /// <summary>
    /// Merges <see cref="KernelSplit"/>'s live chunks of each (row, head) (grid X = head, grid Y = row):
    /// o = Σ_c e^(m_c - M) acc_c / Σ_c e^(m_c - M) sum_c with M the largest chunk max; writes the output row's head and,
    /// when <see cref="BatchAttentionParams.Quantize"/>, its Q8_0 blocks.
    /// </summary>
    /// <param name="output">[n, heads * headDim] f32</param>
    /// <param name="xq">[n, heads * headDim / 4] int when quantizing (else a dummy)</param>
    /// <param name="xd">[n, heads * headDim / 32] f32 when quantizing</param>
    public static void KernelCombine(ArrayView<float> partials, ArrayView<float> output, ArrayView<int> rows,
        ArrayView<int> xq, ArrayView<float> xd, BatchAttentionParams p)
    {
        int tid = Group.IdxX;
        int g = Group.DimX;
        int h = Grid.IdxX;
        int r = Grid.IdxY;
        int d = p.HeadDim;
        int pos = rows[r * RowFields];
        if (pos < 0) return; // uniform over the group
        int live = pos / p.ChunkLength + 1;
        long cell0 = ((long)r * p.Heads + h) * p.Chunks;
        long ms = (long)p.N * p.Heads * p.Chunks * d + cell0 * 2;
        float m = float.NegativeInfinity;
        for (int c = 0; c < live; c++) m = Reductions.Max(m, partials[ms + 2 * c]);
        float denom = 0;
        for (int c = 0; c < live; c++) denom += ILGPU.Algorithms.XMath.Exp(partials[ms + 2 * c] - m) * partials[ms + 2 * c + 1];
        float inv = 1f / denom;
        long qBase = ((long)r * p.Heads + h) * d;
        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int c = 0; c < live; c++)
                acc += ILGPU.Algorithms.XMath.Exp(partials[ms + 2 * c] - m) * partials[(cell0 + c) * d + i];
            float o = acc * inv;
            output[qBase + i] = o;
            // CUDA: quantize lane by lane (headDim % 32 == 0 when Quantize is set, so whole warps are here).
            if (p.Quantize != 0 && Warp.WarpSize % 32 == 0)
                QuantizeQ8_0Kernel.QuantizeLane(o, qBase + i, xq, xd);
        }
        if (p.Quantize != 0 && Warp.WarpSize % 32 != 0)
        {
            Group.Barrier();
            for (int b = tid; b < d / 32; b += g)
                QuantizeQ8_0Kernel.QuantizeBlock(output, qBase + b * 32, xq, xd, qBase / 32 + b);
        }
    }

    /// <summary>
    /// <see cref="KernelSplit"/> and <see cref="KernelCombine"/> in one launch, as <see cref="AttentionKernel.KernelFlashDecode"/>
    /// (grid X = head, grid Y = row × <see cref="BatchAttentionParams.Chunks"/> + chunk): each live chunk runs an online softmax in
    /// registers (no score stored); a row with one live chunk writes its output directly, otherwise the last of its live
    /// chunks to finish merges the partials and resets its counter. Shape limits: <see cref="AttentionKernel.FlashDecodeFits"/>.
    /// </summary>
    /// <param name="partials">[n, heads, chunks, headDim] f32 accumulators, then [n, heads, chunks, 2] f32 (max, sum)</param>
    /// <param name="counters">[n, heads] int, zero before the launch and after it</param>
    public static void KernelFlash(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> partials,
        ArrayView<int> counters, ArrayView<float> output, ArrayView<int> rows, ArrayView<int> xq, ArrayView<float> xd, BatchAttentionParams p)
    {
        var qs = SharedMemory.Allocate<float>(AttentionKernel.MaxHeadDim);
        int tid = Group.IdxX;
        int g = Group.DimX;
        int h = Grid.IdxX;
        int r = Grid.IdxY / p.Chunks;
        int chunk = Grid.IdxY - r * p.Chunks;
        int d = p.HeadDim;
        int pos = rows[r * RowFields];
        int t0 = chunk * p.ChunkLength;
        if (pos < 0 || t0 > pos) return; // uniform over the group
        int t1 = t0 + p.ChunkLength < pos + 1 ? t0 + p.ChunkLength : pos + 1;
        int kvh = h / (p.Heads / p.KvHeads);
        long head = (long)r * p.Heads + h;
        long qBase = head * d;
        long kvOff = LayerBase(rows, r, p.Layer, p.KvDim) + (long)kvh * d;
        for (int i = tid; i < d; i += g) qs[i] = q[qBase + i];
        Group.Barrier();
        // Not fused (RoPE and the store ran in KernelRopeStore): the fresh-key views are never read.
        AttentionKernel.FlashChunk(qs, qs, keys, values, values, partials, counters, output, xq, xd, false, pos, t0, t1, pos / p.ChunkLength + 1,
            d, p.KvDim, kvOff, 0, qBase, head * p.Chunks + chunk, chunk, (long)p.N * p.Heads * p.Chunks * d, head, p.Scale, p.Quantize, tid, g);
    }

    /// <summary>q · k over a cache row, four independent accumulators so four loads are in flight at once.</summary>
    private static float Dot(ArrayView<float> qs, ArrayView<float> keys, long k, int d)
    {
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int i = 0;
        for (; i + 3 < d; i += 4)
        {
            a0 += qs[i] * keys[k + i];
            a1 += qs[i + 1] * keys[k + i + 1];
            a2 += qs[i + 2] * keys[k + i + 2];
            a3 += qs[i + 3] * keys[k + i + 3];
        }
        for (; i < d; i++) a0 += qs[i] * keys[k + i];
        return (a0 + a1) + (a2 + a3);
    }
}
