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
        var c = BeginRowChunk(q, rows, qs, p);
        if (!c.Live) return; // uniform over the group
        // Reads the cache only (RoPE and the store ran in KernelRopeStore): the fresh-key views are never read.
        AttentionKernel.SplitChunk(qs, qs, keys, values, values, partials, false, c, p.HeadDim, p.KvDim, (long)p.N * p.Heads * p.Chunks * p.HeadDim,
            p.Scale, Group.IdxX, Group.DimX);
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
        int r = Grid.IdxY;
        int pos = rows[r * RowFields];
        if (pos < 0) return; // uniform over the group
        long head = (long)r * p.Heads + Grid.IdxX;
        AttentionKernel.MergeChunks(partials, head * p.Chunks, pos / p.ChunkLength + 1, (long)p.N * p.Heads * p.Chunks * p.HeadDim, p.HeadDim, output,
            head * p.HeadDim, xq, xd, p.Quantize, Group.IdxX, Group.DimX);
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
        var c = BeginRowChunk(q, rows, qs, p);
        if (!c.Live) return; // uniform over the group
        // Not fused (RoPE and the store ran in KernelRopeStore): the fresh-key views are never read.
        AttentionKernel.FlashChunk(qs, qs, keys, values, values, partials, counters, output, xq, xd, false, c, p.HeadDim, p.KvDim,
            (long)p.N * p.Heads * p.Chunks * p.HeadDim, p.Scale, p.Quantize, Group.IdxX, Group.DimX);
    }

    /// <summary>
    /// The set-up shared by <see cref="KernelSplit"/> and <see cref="KernelFlash"/> (grid X = head, grid Y = row × Chunks + chunk):
    /// the row's position from the row table, this chunk's positions, and, for a live chunk, the row's q head in
    /// <paramref name="qs"/> followed by a group barrier. A dead chunk or a row of no segment returns before any barrier
    /// (uniform over the group) with <see cref="AttentionKernel.DecodeChunk.Live"/> false.
    /// </summary>
    private static AttentionKernel.DecodeChunk BeginRowChunk(ArrayView<float> q, ArrayView<int> rows, ArrayView<float> qs, BatchAttentionParams p)
    {
        var c = new AttentionKernel.DecodeChunk();
        int h = Grid.IdxX;
        int r = Grid.IdxY / p.Chunks;
        int d = p.HeadDim;
        c.Chunk = Grid.IdxY - r * p.Chunks;
        c.Pos = rows[r * RowFields];
        c.T0 = c.Chunk * p.ChunkLength;
        if (c.Pos < 0 || c.T0 > c.Pos) return c; // dead: Live stays false
        c.Live = true;
        c.T1 = c.T0 + p.ChunkLength < c.Pos + 1 ? c.T0 + p.ChunkLength : c.Pos + 1;
        c.LiveChunks = c.Pos / p.ChunkLength + 1;
        int kvh = h / (p.Heads / p.KvHeads);
        c.Head = (long)r * p.Heads + h;
        c.Cell = c.Head * p.Chunks + c.Chunk;
        c.QBase = c.Head * d;
        c.KvOff = LayerBase(rows, r, p.Layer, p.KvDim) + (long)kvh * d;
        for (int i = Group.IdxX; i < d; i += Group.DimX) qs[i] = q[c.QBase + i];
        Group.Barrier();
        return c;
    }
}
