using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of an encoder attention launch.</summary>
public struct EncoderAttentionParams
{
    /// <summary>Rows (all sequences together), heads, elements per head.</summary>
    public int N, Heads, HeadDim;

    /// <summary>Number of packed sequences: <c>offsets</c> holds Sequences + 1 entries.</summary>
    public int Sequences;

    /// <summary>Longest sequence: the stride of a (row, head)'s score row in the scratch.</summary>
    public int MaxLength;

    /// <summary>Score multiplier (1/√headDim for BERT).</summary>
    public float Scale;
}

/// <summary>
/// Masked bidirectional attention over packed sequences (BERT's encoder), one group per (row, head): grid X =
/// row (CUDA allows 2³¹ − 1 there, against 65535 in Y), grid Y = head. A row finds its sequence by binary search in the prefix offsets and attends to
/// exactly that sequence's rows: (1) scores q·k·scale into a scratch row in global memory
/// (<c>[n, heads, maxLength]</c>, so lengths are not limited by shared memory) and their max, (2)
/// exponentials and their sum, (3) p·v: when the group is a multiple of headDim wide (a GPU: 128 threads,
/// heads of 32 or 64), it splits the positions among copies of the head's dimensions and adds their partial
/// sums in shared memory; else each thread owns output dimensions and sums p_t · v_t over all positions.
/// </summary>
public static class EncoderAttentionKernel
{
    /// <param name="q">[n, heads * headDim] f32 (k, v and output likewise)</param>
    /// <param name="scores">[n, heads, maxLength] f32 scratch</param>
    /// <param name="offsets">[sequences + 1] int: first row of each sequence, then n</param>
    public static void Kernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> scores,
        ArrayView<float> output, ArrayView<int> offsets, EncoderAttentionParams p)
    {
        int r = Grid.IdxX;
        int h = Grid.IdxY;
        // The sequence s with offsets[s] <= r < offsets[s + 1] (empty sequences repeat an offset: the last
        // such s is the one that holds r).
        int lo = 0, hi = p.Sequences;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (offsets[mid] <= r) lo = mid;
            else hi = mid;
        }
        int start = offsets[lo];
        int len = offsets[lo + 1] - start;
        int width = p.Heads * p.HeadDim;
        long qBase = (long)r * width + (long)h * p.HeadDim;
        long kvBase = (long)start * width + (long)h * p.HeadDim;
        long sBase = ((long)r * p.Heads + h) * p.MaxLength;

        float localMax = float.NegativeInfinity;
        for (int t = Group.IdxX; t < len; t += Group.DimX)
        {
            long kt = kvBase + (long)t * width;
            float s = 0;
            for (int i = 0; i < p.HeadDim; i++) s += q[qBase + i] * k[kt + i];
            s *= p.Scale;
            scores[sBase + t] = s;
            localMax = Reductions.Max(localMax, s);
        }
        float max = Reductions.GroupMax(localMax); // includes a barrier: scores[] are visible after it

        float localSum = 0;
        for (int t = Group.IdxX; t < len; t += Group.DimX)
        {
            float e = ILGPU.Algorithms.XMath.Exp(scores[sBase + t] - max);
            scores[sBase + t] = e;
            localSum += e;
        }
        float inv = 1f / Reductions.GroupSum(localSum);

        int slices = Group.DimX / p.HeadDim; // the same for the whole group: every thread takes the same branch
        if (slices >= 2 && Group.DimX % p.HeadDim == 0 && Group.DimX <= MaxGroup)
        {
            // The group is `slices` copies of the head's dimensions: slice j sums positions t ≡ j (mod slices),
            // then slice 0 adds the partial sums up. A warp reads consecutive elements of one value row.
            var partial = SharedMemory.Allocate<float>(MaxGroup);
            int i = Group.IdxX % p.HeadDim, slice = Group.IdxX / p.HeadDim;
            float acc = 0;
            for (int t = slice; t < len; t += slices)
                acc += scores[sBase + t] * v[kvBase + (long)t * width + i];
            partial[Group.IdxX] = acc;
            Group.Barrier();
            if (slice == 0)
            {
                float sum = 0;
                for (int j = 0; j < slices; j++) sum += partial[j * p.HeadDim + i];
                output[qBase + i] = sum * inv;
            }
            return;
        }
        for (int i = Group.IdxX; i < p.HeadDim; i += Group.DimX)
        {
            float acc = 0;
            for (int t = 0; t < len; t++)
                acc += scores[sBase + t] * v[kvBase + (long)t * width + i];
            output[qBase + i] = acc * inv;
        }
    }

    /// <summary>Largest group the sliced p·v phase handles (shared memory of one float per thread).</summary>
    private const int MaxGroup = 1024;
}
