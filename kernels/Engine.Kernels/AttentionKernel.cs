using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of an attention launch.</summary>
public struct AttentionParams
{
    public int N, Heads, KvHeads, HeadDim, KvDim, ContextLength;

    /// <summary>Position of row 0 when <see cref="N"/> is 1.</summary>
    public int Position0;

    /// <summary>layer * contextLength * kvDim: where this layer's cache starts.</summary>
    public long LayerBase;

    /// <summary>1 / sqrt(headDim).</summary>
    public float Scale;

    /// <summary>1: also quantize the output to Q8_0 (headDim % 32 == 0) for the output projection.</summary>
    public int Quantize;
}

/// <summary>
/// Causal grouped-query attention over the KV cache, one group per (query row, head): grid X = head,
/// grid Y = row. Scores go to a scratch row in global memory (<c>[n, heads, contextLength]</c>), so the
/// context length is not limited by shared memory: (1) scores and their max, (2) exponentials and
/// their sum, (3) each thread owns output dimensions and sums p_t · v_t over positions.
/// </summary>
public static class AttentionKernel
{
    /// <param name="q">[n, heads * headDim] f32</param>
    /// <param name="keys">[layers, contextLength, kvDim] f32 (values likewise)</param>
    /// <param name="scores">[n, heads, contextLength] f32 scratch</param>
    /// <param name="output">[n, heads * headDim] f32</param>
    /// <param name="positions">[n] int (read when n &gt; 1)</param>
    /// <param name="xq">[n, heads * headDim / 4] int when quantizing (else a dummy)</param>
    /// <param name="xd">[n, heads * headDim / 32] f32 when quantizing</param>
    public static void Kernel(ArrayView<float> q, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> scores,
        ArrayView<float> output, ArrayView<int> positions, ArrayView<int> xq, ArrayView<float> xd, AttentionParams p)
    {
        int h = Grid.IdxX;
        int r = Grid.IdxY;
        int pos = p.N == 1 ? p.Position0 : positions[r];
        int len = pos + 1;
        int kvh = h / (p.Heads / p.KvHeads);
        long qBase = ((long)r * p.Heads + h) * p.HeadDim;
        long sBase = ((long)r * p.Heads + h) * p.ContextLength;
        long kvOff = p.LayerBase + (long)kvh * p.HeadDim;

        float localMax = float.NegativeInfinity;
        for (int t = Group.IdxX; t < len; t += Group.DimX)
        {
            long kt = kvOff + (long)t * p.KvDim;
            float s = 0;
            for (int i = 0; i < p.HeadDim; i++) s += q[qBase + i] * keys[kt + i];
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
        float sum = Reductions.GroupSum(localSum);
        float inv = 1f / sum;

        for (int i = Group.IdxX; i < p.HeadDim; i += Group.DimX)
        {
            float acc = 0;
            for (int t = 0; t < len; t++)
                acc += scores[sBase + t] * values[kvOff + (long)t * p.KvDim + i];
            output[qBase + i] = acc * inv;
            // CUDA: quantize lane by lane (headDim % 32 == 0 when Quantize is set, so whole warps are here).
            if (p.Quantize != 0 && Warp.WarpSize % 32 == 0)
                QuantizeQ8_0Kernel.QuantizeLane(acc * inv, qBase + i, xq, xd);
        }

        if (p.Quantize != 0 && Warp.WarpSize % 32 != 0)
        {
            // This head's output is whole Q8_0 blocks of the row [heads * headDim]: quantize them here.
            Group.Barrier();
            for (int b = Group.IdxX; b < p.HeadDim / 32; b += Group.DimX)
                QuantizeQ8_0Kernel.QuantizeBlock(output, qBase + b * 32, xq, xd, qBase / 32 + b);
        }
    }
}
