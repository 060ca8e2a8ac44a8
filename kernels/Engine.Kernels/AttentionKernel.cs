using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of an attention launch.</summary>
public struct AttentionParams
{
    public int N, Heads, KvHeads, HeadDim, KvDim, ContextLength;

    /// <summary>Position of row 0 when <see cref="N"/> is 1; negative (graph replay): read <c>positions[0]</c>, a device value written before each replay.</summary>
    public int Position0;

    /// <summary>layer * contextLength * kvDim: where this layer's cache starts.</summary>
    public long LayerBase;

    /// <summary>1 / sqrt(headDim).</summary>
    public float Scale;

    /// <summary>1: also quantize the output to Q8_0 (headDim % 32 == 0) for the output projection.</summary>
    public int Quantize;

    /// <summary>
    /// 1 (decode, N = 1 only): q and the row's fresh k are not yet rotated and k/v not yet stored: the kernel
    /// applies RoPE itself and stores k/v at <see cref="Position0"/> (RoPE + KV store + attention in one launch).
    /// </summary>
    public int Fused;

    /// <summary>RoPE style when <see cref="Fused"/>: 1 NeoX (halves), 0 Normal (adjacent pairs).</summary>
    public int NeoX;

    /// <summary>Split decode (<see cref="AttentionKernel.SplitKernel"/>): chunks per head (grid Y), from the context length.</summary>
    public int Chunks;

    /// <summary>Split decode: positions per chunk (≤ <see cref="AttentionKernel.MaxChunk"/>).</summary>
    public int ChunkLength;
}

/// <summary>
/// Causal grouped-query attention over the KV cache, one group per (query row, head): grid X = head,
/// grid Y = row. Scores go to a scratch row in global memory (<c>[n, heads, contextLength]</c>), so the
/// context length is not limited by shared memory.
/// <para>
/// Written for latency, since a decode step's attention is a handful of groups: (0) q of the head goes to
/// shared memory; (1) each thread owns positions and computes q·k_t with four independent accumulators (four
/// loads in flight, not one); (2) max-subtracted exponentials and their sum; (3) the group splits into
/// <c>slices = group / headDim</c> slices, each thread summing p_t · v_t[i] over every slices-th position with
/// eight accumulators, and the slices' partial sums meet in shared memory. (The previous form had one thread per
/// output dimension walk all positions one dependent load at a time: latency × positions.)
/// </para>
/// <para>
/// Fused decode (<see cref="AttentionParams.Fused"/>): every group rotates its q head and its KV head's fresh
/// key into shared memory; the first q head of each KV head also writes the rotated key and the value into the
/// cache at the step's position. No group reads the cache at that position (they use the fresh k/v), so no
/// group waits on another.
/// </para>
/// </summary>
public static class AttentionKernel
{
    /// <summary>Largest head dimension (shared q and k rows).</summary>
    public const int MaxHeadDim = 256;

    /// <summary>Shared partial sums: slices × headDim ≤ max(group, headDim) ≤ 1024.</summary>
    private const int MaxPartial = 1024;

    /// <param name="q">[n, heads * headDim] f32 (not rotated yet when fused)</param>
    /// <param name="keys">[layers, contextLength, kvDim] f32 (values likewise)</param>
    /// <param name="scores">[n, heads, contextLength] f32 scratch</param>
    /// <param name="output">[n, heads * headDim] f32</param>
    /// <param name="positions">[n] int (read when n &gt; 1, or when the position scalar is negative)</param>
    /// <param name="xq">[n, heads * headDim / 4] int when quantizing (else a dummy)</param>
    /// <param name="xd">[n, heads * headDim / 32] f32 when quantizing</param>
    /// <param name="kNew">[1, kvDim] f32: the step's key, not rotated (fused; else a dummy)</param>
    /// <param name="vNew">[1, kvDim] f32: the step's value (fused; else a dummy)</param>
    /// <param name="freq">[headDim / 2] f32 RoPE frequencies (fused; else a dummy)</param>
    public static void Kernel(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> scores,
        ArrayView<float> output, ArrayView<int> positions, ArrayView<int> xq, ArrayView<float> xd,
        ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> freq, AttentionParams p)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var ks = SharedMemory.Allocate<float>(MaxHeadDim);
        var partial = SharedMemory.Allocate<float>(MaxPartial);
        int tid = Group.IdxX;
        int g = Group.DimX;
        int h = Grid.IdxX;
        int r = Grid.IdxY;
        int d = p.HeadDim;
        int pos = p.N == 1 && p.Position0 >= 0 ? p.Position0 : positions[r];
        int len = pos + 1;
        int perKv = p.Heads / p.KvHeads;
        int kvh = h / perKv;
        bool fused = p.Fused != 0;
        long qBase = ((long)r * p.Heads + h) * d;
        long sBase = ((long)r * p.Heads + h) * p.ContextLength;
        long kvOff = p.LayerBase + (long)kvh * d;
        long freshBase = (long)kvh * d; // fused: this KV head's slice of kNew/vNew

        // (0) q (and, fused, the fresh key) of this head into shared memory, rotated when fused.
        LoadQuery(q, kNew, vNew, keys, values, freq, qs, ks, fused, h % perKv == 0, p.NeoX != 0, pos, d, qBase, freshBase, kvOff, p.KvDim, tid, g);
        Group.Barrier();

        // (1) scores and their max; thread tid owns positions tid, tid + g, ...
        float localMax = float.NegativeInfinity;
        for (int t = tid; t < len; t += g)
        {
            float s = fused && t == pos ? DotShared(qs, ks, d) : DotCache(qs, keys, kvOff + (long)t * p.KvDim, d);
            s *= p.Scale;
            scores[sBase + t] = s;
            localMax = Reductions.Max(localMax, s);
        }
        float max = Reductions.GroupMax(localMax); // includes a barrier: scores[] are visible after it

        // (2) exponentials and their sum.
        float localSum = 0;
        for (int t = tid; t < len; t += g)
        {
            float e = ILGPU.Algorithms.XMath.Exp(scores[sBase + t] - max);
            scores[sBase + t] = e;
            localSum += e;
        }
        float sum = Reductions.GroupSum(localSum); // barrier: every exponential is visible
        float inv = 1f / sum;

        // (3) p · v: slice j of the group sums positions j, j + slices, ... for its dimensions.
        int slices = g >= d ? g / d : 1;
        int slice = g >= d ? tid / d : 0;
        int i0 = g >= d ? tid - slice * d : tid;
        int iStep = g >= d ? d : g;
        int cached = fused ? pos : len; // positions read from the cache; fused: the last one is fresh
        if (slice < slices)
        {
            for (int i = i0; i < d; i += iStep)
            {
                long vi = kvOff + i;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
                int t = slice;
                int step = slices;
                long vStep = (long)step * p.KvDim;
                // Eight positions per pass: eight independent value loads in flight per thread.
                for (; t + 7 * step < cached; t += 8 * step)
                {
                    long v0 = vi + (long)t * p.KvDim;
                    long s0 = sBase + t;
                    a0 += scores[s0] * values[v0];
                    a1 += scores[s0 + step] * values[v0 + vStep];
                    a2 += scores[s0 + 2 * step] * values[v0 + 2 * vStep];
                    a3 += scores[s0 + 3 * step] * values[v0 + 3 * vStep];
                    a4 += scores[s0 + 4 * step] * values[v0 + 4 * vStep];
                    a5 += scores[s0 + 5 * step] * values[v0 + 5 * vStep];
                    a6 += scores[s0 + 6 * step] * values[v0 + 6 * vStep];
                    a7 += scores[s0 + 7 * step] * values[v0 + 7 * vStep];
                }
                for (; t < cached; t += step)
                    a0 += scores[sBase + t] * values[vi + (long)t * p.KvDim];
                if (fused && pos % slices == slice)
                    a1 += scores[sBase + pos] * vNew[freshBase + i];
                partial[slice * d + i] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
            }
        }
        Group.Barrier();

        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int j = 0; j < slices; j++) acc += partial[j * d + i];
            float o = acc * inv;
            output[qBase + i] = o;
            // CUDA: quantize lane by lane (headDim % 32 == 0 when Quantize is set, so whole warps are here).
            if (p.Quantize != 0 && Warp.WarpSize % 32 == 0)
                QuantizeQ8_0Kernel.QuantizeLane(o, qBase + i, xq, xd);
        }

        if (p.Quantize != 0 && Warp.WarpSize % 32 != 0)
        {
            // This head's output is whole Q8_0 blocks of the row [heads * headDim]: quantize them here.
            Group.Barrier();
            for (int b = tid; b < d / 32; b += g)
                QuantizeQ8_0Kernel.QuantizeBlock(output, qBase + b * 32, xq, xd, qBase / 32 + b);
        }
    }

    /// <summary>Largest chunk of positions one split-decode group handles (its scores live in shared memory).</summary>
    public const int MaxChunk = 256;

    /// <summary>Positions per chunk for split decode of a cache of <paramref name="contextLength"/> positions: 64, or more so that a head has at most 64 chunks.</summary>
    public static int ChunkLengthFor(int contextLength) => Math.Min(MaxChunk, Math.Max(64, (contextLength + 63) / 64));

    /// <summary>
    /// Split-position ("flash-decoding") attention for one query row (decode, N = 1): grid X = head, grid Y = chunk of
    /// <see cref="AttentionParams.ChunkLength"/> positions, so a step's attention is heads × chunks groups instead of
    /// heads groups walking every position. The grid depends only on the context length (graph replay: the position
    /// may be a device value); chunks past the live length return at once. Each live chunk writes its max score m,
    /// its sum of exp(s - m) and its unnormalized Σ exp(s - m) · v to <paramref name="partials"/>;
    /// <see cref="CombineKernel"/> merges them. Fused (RoPE + KV store) as <see cref="Kernel"/>: every group rotates
    /// q and the fresh key; chunk 0 of the first q head of each KV head stores k/v at the position; no group reads the
    /// cache at that position.
    /// </summary>
    /// <param name="partials">[heads, chunks, headDim] f32 accumulators, then [heads, chunks, 2] f32 (max, sum)</param>
    public static void SplitKernel(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> partials,
        ArrayView<int> positions, ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> freq, AttentionParams p)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var ks = SharedMemory.Allocate<float>(MaxHeadDim);
        var c = BeginDecodeChunk(q, keys, values, positions, kNew, vNew, freq, qs, ks, p);
        if (!c.Live) return; // uniform over the group
        SplitChunk(qs, ks, keys, values, vNew, partials, p.Fused != 0, c, p.HeadDim, p.KvDim, (long)p.Heads * p.Chunks * p.HeadDim, p.Scale,
            Group.IdxX, Group.DimX);
    }

    /// <summary>
    /// Where one group of a split-decode launch works: chunk [<see cref="T0"/>, <see cref="T1"/>) of the positions up to
    /// <see cref="Pos"/> of one (row, head). Set up by <see cref="BeginDecodeChunk"/> (decode) and
    /// <c>BatchAttentionKernel.BeginRowChunk</c> (continuous batching).
    /// </summary>
    internal struct DecodeChunk
    {
        /// <summary>False for a dead chunk (past the row's position) or a row of no segment: the group returns at once.</summary>
        public bool Live;

        /// <summary>The row's position, this chunk's index, its first position and one past its last.</summary>
        public int Pos, Chunk, T0, T1;

        /// <summary>Live chunks of the row: pos / chunkLength + 1.</summary>
        public int LiveChunks;

        /// <summary>Where the head's q (and output) starts; its KV head's cache row 0 (stride kvDim); its fresh k/v (fused).</summary>
        public long QBase, KvOff, FreshBase;

        /// <summary>(row, head) index (its flash counter) and (row, head, chunk) index (its partial).</summary>
        public long Head, Cell;
    }

    /// <summary>
    /// The set-up shared by <see cref="SplitKernel"/> and <see cref="KernelFlashDecode"/> (grid X = head, grid Y = chunk): the
    /// step's position (a device value under graph replay), this chunk's positions, and, for a live chunk, the head's q in
    /// <paramref name="qs"/> (rotated, with the fresh key in <paramref name="ks"/> and the fused KV store, when fused) followed
    /// by a group barrier. A dead chunk returns before any barrier (uniform over the group); chunk 0 is always live, so the
    /// fused KV store always happens.
    /// </summary>
    private static DecodeChunk BeginDecodeChunk(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions,
        ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> freq, ArrayView<float> qs, ArrayView<float> ks, AttentionParams p)
    {
        var c = new DecodeChunk();
        int h = Grid.IdxX;
        int d = p.HeadDim;
        c.Chunk = Grid.IdxY;
        c.Pos = p.Position0 >= 0 ? p.Position0 : positions[0];
        int len = c.Pos + 1;
        c.T0 = c.Chunk * p.ChunkLength;
        if (c.T0 >= len) return c; // dead: Live stays false
        c.Live = true;
        c.T1 = c.T0 + p.ChunkLength < len ? c.T0 + p.ChunkLength : len;
        c.LiveChunks = c.Pos / p.ChunkLength + 1;
        int perKv = p.Heads / p.KvHeads;
        int kvh = h / perKv;
        c.Head = h;
        c.Cell = (long)h * p.Chunks + c.Chunk;
        c.QBase = (long)h * d;
        c.KvOff = p.LayerBase + (long)kvh * d;
        c.FreshBase = (long)kvh * d;
        LoadQuery(q, kNew, vNew, keys, values, freq, qs, ks, p.Fused != 0, c.Chunk == 0 && h % perKv == 0, p.NeoX != 0, c.Pos, d, c.QBase,
            c.FreshBase, c.KvOff, p.KvDim, Group.IdxX, Group.DimX);
        Group.Barrier();
        return c;
    }

    /// <summary>
    /// The body of the two-launch split kernels (<see cref="SplitKernel"/>, <see cref="BatchAttentionKernel.KernelSplit"/>) for one
    /// live chunk <paramref name="c"/>, after the row's q (and, fused, the fresh key) is in shared memory: (1) the chunk's scores
    /// (shared memory) and their max; (2) their exponentials and sum; (3) Σ e_t · v_t, slice j of the group summing positions
    /// t0 + j, t0 + j + slices, ... for its dimensions; then the partial of cell c.Cell: its accumulators at
    /// <c>partials[cell * headDim ..]</c> and (max, sum) at <c>partials[msBase + cell * 2 ..]</c>. Fused: position pos is the fresh
    /// key and value, never read from the cache.
    /// </summary>
    internal static void SplitChunk(ArrayView<float> qs, ArrayView<float> ks, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> vNew,
        ArrayView<float> partials, bool fused, DecodeChunk c, int d, int kvDim, long msBase, float scale, int tid, int g)
    {
        var sc = SharedMemory.Allocate<float>(MaxChunk);
        var partial = SharedMemory.Allocate<float>(MaxPartial);
        int pos = c.Pos, t0 = c.T0, t1 = c.T1;
        long kvOff = c.KvOff;

        // (1) this chunk's scores (shared memory) and their max; thread tid owns positions t0 + tid, t0 + tid + g, ...
        float localMax = float.NegativeInfinity;
        for (int t = t0 + tid; t < t1; t += g)
        {
            float s = fused && t == pos ? DotShared(qs, ks, d) : DotCache(qs, keys, kvOff + (long)t * kvDim, d);
            s *= scale;
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
        int cachedEnd = fused && pos < t1 ? pos : t1; // fused: position pos is the fresh value
        if (slice < slices)
        {
            for (int i = i0; i < d; i += iStep)
            {
                long vi = kvOff + i;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                int t = t0 + slice;
                int step = slices;
                long vStep = (long)step * kvDim;
                for (; t + 3 * step < cachedEnd; t += 4 * step)
                {
                    long v0 = vi + (long)t * kvDim;
                    int s0 = t - t0;
                    a0 += sc[s0] * values[v0];
                    a1 += sc[s0 + step] * values[v0 + vStep];
                    a2 += sc[s0 + 2 * step] * values[v0 + 2 * vStep];
                    a3 += sc[s0 + 3 * step] * values[v0 + 3 * vStep];
                }
                for (; t < cachedEnd; t += step)
                    a0 += sc[t - t0] * values[vi + (long)t * kvDim];
                if (fused && pos < t1 && (pos - t0) % slices == slice)
                    a1 += sc[pos - t0] * vNew[c.FreshBase + i];
                partial[slice * d + i] = (a0 + a1) + (a2 + a3);
            }
        }
        Group.Barrier();

        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int j = 0; j < slices; j++) acc += partial[j * d + i];
            partials[c.Cell * d + i] = acc;
        }
        if (tid == 0)
        {
            long ms = msBase + c.Cell * 2;
            partials[ms] = max;
            partials[ms + 1] = sum;
        }
    }

    /// <summary>
    /// Merges <see cref="SplitKernel"/>'s live chunks of each head (grid X = head): o = Σ_c e^(m_c - M) acc_c / Σ_c e^(m_c - M) sum_c
    /// with M the largest chunk max; writes the output row and, when <see cref="AttentionParams.Quantize"/>, its Q8_0 form.
    /// </summary>
    public static void CombineKernel(ArrayView<float> partials, ArrayView<float> output, ArrayView<int> positions,
        ArrayView<int> xq, ArrayView<float> xd, AttentionParams p)
    {
        int h = Grid.IdxX;
        int pos = p.Position0 >= 0 ? p.Position0 : positions[0];
        MergeChunks(partials, (long)h * p.Chunks, pos / p.ChunkLength + 1, (long)p.Heads * p.Chunks * p.HeadDim, p.HeadDim, output, (long)h * p.HeadDim,
            xq, xd, p.Quantize, Group.IdxX, Group.DimX);
    }

    /// <summary>
    /// The merge of one head's live chunk partials, shared by <see cref="CombineKernel"/>, <see cref="BatchAttentionKernel.KernelCombine"/>
    /// and the last chunk of the flash kernels: cells <c>cell0 .. cell0 + live</c> (accumulators at <c>partials[cell * headDim ..]</c>,
    /// (max, sum) at <c>partials[msBase + cell * 2 ..]</c>) give o = Σ_c e^(m_c - M) acc_c / Σ_c e^(m_c - M) sum_c with M the largest
    /// chunk max, written at <c>output[qBase ..]</c> with its Q8_0 form when <paramref name="quantize"/>. Every thread of the group calls it.
    /// </summary>
    internal static void MergeChunks(ArrayView<float> partials, long cell0, int live, long msBase, int d, ArrayView<float> output, long qBase,
        ArrayView<int> xq, ArrayView<float> xd, int quantize, int tid, int g)
    {
        long ms = msBase + cell0 * 2;
        float m = float.NegativeInfinity;
        for (int c = 0; c < live; c++) m = Reductions.Max(m, partials[ms + 2 * c]);
        float denom = 0;
        for (int c = 0; c < live; c++) denom += ILGPU.Algorithms.XMath.Exp(partials[ms + 2 * c] - m) * partials[ms + 2 * c + 1];
        float inv = 1f / denom;
        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int c = 0; c < live; c++)
                acc += ILGPU.Algorithms.XMath.Exp(partials[ms + 2 * c] - m) * partials[(cell0 + c) * d + i];
            WriteOutput(acc * inv, output, qBase, i, xq, xd, quantize);
        }
        QuantizeBlocks(output, qBase, d, xq, xd, quantize, tid, g);
    }

    /// <summary>Most row groups of a flash-decoding group (group size ≤ 256, 4 dimensions per lane).</summary>
    private const int MaxRowGroups = 256;

    /// <summary>
    /// Whether <see cref="KernelFlashDecode"/> runs this shape: a row group of headDim / 4 lanes (4 dimensions each) is a
    /// power of two that fits in a warp and divides the group.
    /// </summary>
    public static bool FlashDecodeFits(int headDim, int warpSize, int groupSize)
    {
        if (headDim % 4 != 0 || headDim > MaxHeadDim) return false;
        int lanes = headDim / 4;
        return (lanes & (lanes - 1)) == 0 && lanes <= warpSize && groupSize % lanes == 0 && groupSize <= MaxRowGroups;
    }

    /// <summary>
    /// Flash-decoding attention for one query row (decode, N = 1) in ONE launch: grid X = head, grid Y = chunk of
    /// <see cref="AttentionParams.ChunkLength"/> positions (from the context length only, for graph replay; dead chunks
    /// return at once). No score is stored anywhere: the group splits into row groups of headDim / 4 lanes, each lane
    /// holding 4 dimensions of q; a row group takes one position at a time (its k and v rows read as whole coalesced rows,
    /// both issued before the dot's shuffle reduction), and keeps an online softmax in registers: running max m, running
    /// sum l and the 4 accumulators of Σ e^(s - m) v, rescaled when m grows. The row groups then merge through shared
    /// memory into the chunk's (max, sum, Σ e·v). One live chunk (short context): the group writes the output itself.
    /// Several: each writes its partial to <paramref name="partials"/>, and the last live chunk of the head to finish
    /// (a device-wide atomic counter per head; memory fences order the partials before it) merges them all, writes the
    /// output (and its Q8_0 form) and resets the counter to zero for the next launch (and graph replay). Fused (RoPE + KV
    /// store) as <see cref="SplitKernel"/>: chunk 0 of the first q head of each KV head stores k/v; position pos is read
    /// from the fresh k/v, never from the cache. Shape limits: <see cref="FlashDecodeFits"/>.
    /// </summary>
    /// <param name="partials">[heads, chunks, headDim] f32 accumulators, then [heads, chunks, 2] f32 (max, sum)</param>
    /// <param name="counters">[heads] int, zero before the launch and after it</param>
    /// <param name="output">[heads * headDim] f32</param>
    public static void KernelFlashDecode(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> partials,
        ArrayView<int> counters, ArrayView<float> output, ArrayView<int> positions, ArrayView<int> xq, ArrayView<float> xd,
        ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> freq, AttentionParams p)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var ks = SharedMemory.Allocate<float>(MaxHeadDim);
        var c = BeginDecodeChunk(q, keys, values, positions, kNew, vNew, freq, qs, ks, p);
        if (!c.Live) return; // uniform over the group
        FlashChunk(qs, ks, keys, values, vNew, partials, counters, output, xq, xd, p.Fused != 0, c, p.HeadDim, p.KvDim,
            (long)p.Heads * p.Chunks * p.HeadDim, p.Scale, p.Quantize, Group.IdxX, Group.DimX);
    }

    /// <summary>
    /// The body of the flash-decoding kernels (<see cref="KernelFlashDecode"/>, <see cref="BatchAttentionKernel.KernelFlash"/>)
    /// for one live (row, head, chunk) group <paramref name="c"/>, after the row's q (and, fused, the fresh key) is in shared
    /// memory: the chunk [t0, t1) of the cache at c.KvOff (stride kvDim) by row groups with an online softmax in registers,
    /// the row groups merged in shared memory, then either the output (one live chunk) or the partial of c.Cell and, for the
    /// last live chunk to finish (counter c.Head), the merge of the row's live cells (<see cref="MergeChunks"/>), the output
    /// and the counter's reset. (max, sum) pairs live at <c>partials[ms + cell * 2]</c>. Uniform branches only.
    /// </summary>
    internal static void FlashChunk(ArrayView<float> qs, ArrayView<float> ks, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> vNew,
        ArrayView<float> partials, ArrayView<int> counters, ArrayView<float> output, ArrayView<int> xq, ArrayView<float> xd, bool fused,
        DecodeChunk c, int d, int kvDim, long ms, float scale, int quantize, int tid, int g)
    {
        int pos = c.Pos, t0 = c.T0, t1 = c.T1, live = c.LiveChunks;
        long kvOff = c.KvOff, freshBase = c.FreshBase, qBase = c.QBase, cell = c.Cell;
        var groupM = SharedMemory.Allocate<float>(MaxRowGroups);
        var groupL = SharedMemory.Allocate<float>(MaxRowGroups);
        var groupAcc = SharedMemory.Allocate<float>(MaxPartial); // [rowGroups, headDim]: rowGroups * headDim = 4 * group ≤ 1024
        var last = SharedMemory.Allocate<int>(1);

        // Row groups of `lanes` lanes; lane j of a row group holds dimensions 4j .. 4j + 3.
        int lanes = d / 4;
        int rowGroups = g / lanes;
        int rg = tid / lanes;
        int i4 = (tid - rg * lanes) * 4;
        float q0 = qs[i4], q1 = qs[i4 + 1], q2 = qs[i4 + 2], q3 = qs[i4 + 3];
        float m = float.NegativeInfinity, l = 0, a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        // The loop bound is uniform over the group (every lane shuffles each pass); a row group past t1 idles. The next
        // position's k and v are loaded before this one's reduction and softmax: a row group takes several positions in a
        // row, and each pass waiting for its own loads made the chunk a chain of round trips to memory.
        var kv = LoadKv(keys, values, ks, vNew, fused, pos, t0 + rg, t1, kvOff, kvDim, freshBase, i4);
        for (int tb = t0; tb < t1; tb += rowGroups)
        {
            int t = tb + rg;
            bool valid = t < t1;
            var cur = kv;
            kv = LoadKv(keys, values, ks, vNew, fused, pos, t + rowGroups, t1, kvOff, kvDim, freshBase, i4);
            float s = (q0 * cur.K0 + q1 * cur.K1) + (q2 * cur.K2 + q3 * cur.K3);
            for (int offset = lanes / 2; offset > 0; offset >>= 1)
                s += Warp.ShuffleXor(s, offset);
            if (valid)
            {
                s *= scale;
                float mNew = Reductions.Max(m, s);
                float corr = l > 0 ? ILGPU.Algorithms.XMath.Exp(m - mNew) : 0f; // l > 0 after the first position
                float e = ILGPU.Algorithms.XMath.Exp(s - mNew);
                l = l * corr + e;
                a0 = a0 * corr + e * cur.V0;
                a1 = a1 * corr + e * cur.V1;
                a2 = a2 * corr + e * cur.V2;
                a3 = a3 * corr + e * cur.V3;
                m = mNew;
            }
        }

        // The row groups' (m, l, acc) into the chunk's: weights e^(m_rg - M), 0 for a row group that saw no position.
        if (i4 == 0)
        {
            groupM[rg] = m;
            groupL[rg] = l;
        }
        long at = (long)rg * d + i4;
        groupAcc[at] = a0;
        groupAcc[at + 1] = a1;
        groupAcc[at + 2] = a2;
        groupAcc[at + 3] = a3;
        Group.Barrier();
        float max = float.NegativeInfinity;
        for (int j = 0; j < rowGroups; j++) max = Reductions.Max(max, groupM[j]);
        float sum = 0;
        for (int j = 0; j < rowGroups; j++)
            if (groupL[j] > 0) sum += groupL[j] * ILGPU.Algorithms.XMath.Exp(groupM[j] - max);

        if (live == 1)
        {
            // The only live chunk: normalize and write the output here (uniform over the group).
            float inv = 1f / sum;
            for (int i = tid; i < d; i += g)
            {
                float acc = 0;
                for (int j = 0; j < rowGroups; j++)
                    if (groupL[j] > 0) acc += groupAcc[j * d + i] * ILGPU.Algorithms.XMath.Exp(groupM[j] - max);
                WriteOutput(acc * inv, output, qBase, i, xq, xd, quantize);
            }
            QuantizeBlocks(output, qBase, d, xq, xd, quantize, tid, g);
            return;
        }

        for (int i = tid; i < d; i += g)
        {
            float acc = 0;
            for (int j = 0; j < rowGroups; j++)
                if (groupL[j] > 0) acc += groupAcc[j * d + i] * ILGPU.Algorithms.XMath.Exp(groupM[j] - max);
            partials[cell * d + i] = acc;
        }
        if (tid == 0)
        {
            partials[ms + cell * 2] = max;
            partials[ms + cell * 2 + 1] = sum;
        }
        // Publish the partial, then count this chunk done; the last of the live chunks merges. The ordering on a GPU (the CPU
        // accelerator runs groups one after another on one multiprocessor, so no test here can show a race) is the PTX memory
        // model's fence-fence synchronization, in the shape of CUDA's grid sync (cooperative groups) and of the programming
        // guide's last-block sum:
        //   writer group: every thread's partial stores -> bar.sync -> thread 0: fence (membar.gl = fence.sc.gpu on sm_70+)
        //                 -> atom.add (relaxed, gpu scope: a strong write). The barrier puts every thread's stores before
        //                 thread 0's fence in causality order, and a fence followed by a strong write is a release pattern,
        //                 cumulative over what precedes it: the whole group's partial is released, not only thread 0's.
        //   merger:       thread 0: atom.add reads the count that makes it last (every other live chunk's add precedes it in
        //                 the counter's coherence order: an RMW chain) -> fence (acquire pattern) -> shared flag -> bar.sync ->
        //                 every thread's plain loads of the partials. The fences synchronize, the barrier carries it to the
        //                 group, so the loads see the other groups' stores (and not a stale L1 line: the acquire fence is what
        //                 orders weak loads after it).
        // The previous form fenced in every thread BEFORE the barrier and let thread 0 add after it with no fence between:
        // then thread j's fence is followed by no strong write of thread j, and thread 0's fence precedes the barrier that
        // orders thread j's stores, so the model released only thread 0's own stores (in practice membar.gl waits for each
        // thread's stores, so it likely worked; the form below is correct by the model and fences once per group, not per thread).
        // The counter's reset by the merger is a plain store: every live chunk has counted by then, and the next launch (or
        // graph replay) on the stream starts after this kernel completes. ILGPU's PTX for sm_90 (ENGINE_PTX_DUMP, 2026-11-26):
        // bar.sync; thread 0: membar.gl, atom.add.u32, membar.gl when last, st.shared; bar.sync; the partials then read with
        // plain ld (no .nc, which the fence could not order). The CUDA-shaped CPU device runs two groups at once, and a merge by
        // chunk index instead of by count fails FlashDecodeTests there (it passes on one multiprocessor): the race is testable,
        // the ordering is not (x86 and .NET's interlocked add are stronger than the GPU's).
        Group.Barrier();
        if (tid == 0)
        {
            MemoryFence.DeviceLevel(); // release: the group's partial before the count
            bool isLast = Atomic.Add(ref counters[c.Head], 1) == live - 1;
            if (isLast) MemoryFence.DeviceLevel(); // acquire: the other chunks' partials after their counts
            last[0] = isLast ? 1 : 0;
        }
        Group.Barrier();
        if (last[0] == 0) return; // uniform over the group

        MergeChunks(partials, cell - c.Chunk, live, ms, d, output, qBase, xq, xd, quantize, tid, g);
        if (tid == 0) counters[c.Head] = 0; // every live chunk has counted: ready for the next launch
    }

    /// <summary>Four dimensions of one position's key and value row (one lane's share of a flash row group).</summary>
    internal struct Kv4
    {
        public float K0, K1, K2, K3, V0, V1, V2, V3;
    }

    /// <summary>
    /// Dimensions i4 .. i4 + 3 of position t's key and value for <see cref="FlashChunk"/>: the fresh k (shared) and v when
    /// fused and t is the row's own position, the cache row otherwise, zeros past t1.
    /// </summary>
    private static Kv4 LoadKv(ArrayView<float> keys, ArrayView<float> values, ArrayView<float> ks, ArrayView<float> vNew, bool fused,
        int pos, int t, int t1, long kvOff, int kvDim, long freshBase, int i4)
    {
        var r = default(Kv4);
        if (t >= t1) return r;
        if (fused && t == pos)
        {
            r.K0 = ks[i4]; r.K1 = ks[i4 + 1]; r.K2 = ks[i4 + 2]; r.K3 = ks[i4 + 3];
            long f = freshBase + i4;
            r.V0 = vNew[f]; r.V1 = vNew[f + 1]; r.V2 = vNew[f + 2]; r.V3 = vNew[f + 3];
            return r;
        }
        long row = kvOff + (long)t * kvDim + i4;
        r.K0 = keys[row]; r.K1 = keys[row + 1]; r.K2 = keys[row + 2]; r.K3 = keys[row + 3];
        r.V0 = values[row]; r.V1 = values[row + 1]; r.V2 = values[row + 2]; r.V3 = values[row + 3];
        return r;
    }

    /// <summary>Output element i of the head at <paramref name="qBase"/>; on 32-lane warps also its Q8_0 lane (whole warps call it).</summary>
    private static void WriteOutput(float o, ArrayView<float> output, long qBase, int i, ArrayView<int> xq, ArrayView<float> xd, int quantize)
    {
        output[qBase + i] = o;
        if (quantize != 0 && Warp.WarpSize % 32 == 0)
            QuantizeQ8_0Kernel.QuantizeLane(o, qBase + i, xq, xd);
    }

    /// <summary>Warps narrower than 32 lanes: the head's Q8_0 blocks after its output is written (a barrier, then a thread per block).</summary>
    private static void QuantizeBlocks(ArrayView<float> output, long qBase, int d, ArrayView<int> xq, ArrayView<float> xd, int quantize, int tid, int g)
    {
        if (quantize == 0 || Warp.WarpSize % 32 == 0) return;
        Group.Barrier();
        for (int b = tid; b < d / 32; b += g)
            QuantizeQ8_0Kernel.QuantizeBlock(output, qBase + b * 32, xq, xd, qBase / 32 + b);
    }

    /// <summary>q · k over a cache row, four independent accumulators so four loads are in flight at once.</summary>
    private static float DotCache(ArrayView<float> qs, ArrayView<float> keys, long k, int d)
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

    private static float DotShared(ArrayView<float> qs, ArrayView<float> ks, int d)
    {
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int i = 0;
        for (; i + 3 < d; i += 4)
        {
            a0 += qs[i] * ks[i];
            a1 += qs[i + 1] * ks[i + 1];
            a2 += qs[i + 2] * ks[i + 2];
            a3 += qs[i + 3] * ks[i + 3];
        }
        for (; i < d; i++) a0 += qs[i] * ks[i];
        return (a0 + a1) + (a2 + a3);
    }

    /// <summary>
    /// Step (0) of both decode forms: this head's q into shared memory <paramref name="qs"/> ([headDim] f32). Fused
    /// (Fused=1): q and the fresh key rotated by RoPE at <paramref name="pos"/> (the key into <paramref name="ks"/>),
    /// and, where <paramref name="store"/> (one group per KV head), the rotated key and the value written to the cache
    /// row of <paramref name="pos"/>. The caller's group barrier follows.
    /// </summary>
    private static void LoadQuery(ArrayView<float> q, ArrayView<float> kNew, ArrayView<float> vNew, ArrayView<float> keys,
        ArrayView<float> values, ArrayView<float> freq, ArrayView<float> qs, ArrayView<float> ks, bool fused, bool store, bool neoX,
        int pos, int d, long qBase, long freshBase, long kvOff, int kvDim, int tid, int g)
    {
        if (!fused)
        {
            for (int i = tid; i < d; i += g) qs[i] = q[qBase + i];
            return;
        }
        int half = d / 2;
        for (int i = tid; i < half; i += g)
        {
            int a = neoX ? i : 2 * i;
            int b = neoX ? i + half : 2 * i + 1;
            float tr = RopeKernel.ReducedAngle(pos, freq[i]);
            float c = ILGPU.Algorithms.XMath.Cos(tr);
            float s = ILGPU.Algorithms.XMath.Sin(tr);
            float q0 = q[qBase + a], q1 = q[qBase + b];
            qs[a] = q0 * c - q1 * s;
            qs[b] = q0 * s + q1 * c;
            float k0 = kNew[freshBase + a], k1 = kNew[freshBase + b];
            float kr0 = k0 * c - k1 * s, kr1 = k0 * s + k1 * c;
            ks[a] = kr0;
            ks[b] = kr1;
            if (store)
            {
                long dst = kvOff + (long)pos * kvDim;
                keys[dst + a] = kr0;
                keys[dst + b] = kr1;
                values[dst + a] = vNew[freshBase + a];
                values[dst + b] = vNew[freshBase + b];
            }
        }
    }
}
