using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of a RoPE launch.</summary>
public struct RopeParams
{
    public int N, Heads, HeadDim;

    /// <summary>Position of row 0 when <see cref="N"/> is 1 (decode: no position upload); negative (graph replay): read <c>positions[0]</c>, a device value written before each replay.</summary>
    public int Position0;

    /// <summary>1 for NeoX (halves), 0 for Normal (adjacent pairs).</summary>
    public int NeoX;
}

/// <summary>
/// Rotary position embedding in place on <c>x [n, heads * headDim]</c>, one thread per dimension pair.
/// The frequencies <c>base^(-2i/headDim)</c> come from a table computed on the host with the reference's
/// own MathF.Pow, so <c>theta = pos * freq[i]</c> is the same f32 product; theta is reduced modulo 2π in
/// f64 before the f32 sine and cosine so that large positions keep their accuracy on the GPU.
/// </summary>
public static class RopeKernel
{
    /// <param name="x">[n, heads * headDim] f32</param>
    /// <param name="positions">[n] int (read when n &gt; 1, or when the position scalar is negative)</param>
    /// <param name="freq">[headDim / 2] f32</param>
    public static void Kernel(Index1D idx, ArrayView<float> x, ArrayView<int> positions, ArrayView<float> freq, RopeParams p)
    {
        int half = p.HeadDim / 2;
        int i = idx % half;
        int rh = idx / half; // r * heads + h
        int r = rh / p.Heads;
        int pos = p.N == 1 && p.Position0 >= 0 ? p.Position0 : positions[r];
        float tr = ReducedAngle(pos, freq[i]);
        float c = ILGPU.Algorithms.XMath.Cos(tr);
        float s = ILGPU.Algorithms.XMath.Sin(tr);
        long head = (long)rh * p.HeadDim;
        long a = head + (p.NeoX != 0 ? i : 2 * i);
        long b = head + (p.NeoX != 0 ? i + half : 2 * i + 1);
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }

    /// <summary>
    /// RoPE of q and k fused with the KV store (one launch instead of three), one thread per dimension pair of
    /// every q head and every k head of every row: q and k are rotated in place as by <see cref="Kernel"/>, and
    /// the k-head threads also write the rotated pair and the same pair of v into the layer's cache.
    /// </summary>
    /// <param name="q">[n, heads * headDim] f32, rotated in place</param>
    /// <param name="k">[n, kvDim] f32, rotated in place</param>
    /// <param name="v">[n, kvDim] f32</param>
    /// <param name="keys">[layers, contextLength, kvDim] f32 (values likewise)</param>
    /// <param name="positions">[n] int (read when n &gt; 1, or when the position scalar is negative)</param>
    /// <param name="freq">[headDim / 2] f32</param>
    public static void KernelWithKvStore(Index1D idx, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions, ArrayView<float> freq, RopeStoreParams p)
    {
        int half = p.HeadDim / 2;
        int i = idx % half;
        int rh = idx / half;           // r * (heads + kvHeads) + head
        int all = p.Heads + p.KvHeads;
        int r = rh / all;
        int h = rh - r * all;          // q heads first, then k heads
        int pos = p.N == 1 && p.Position0 >= 0 ? p.Position0 : positions[r];
        RotatePairAndStore(q, k, v, keys, values, freq, r, h, i, pos, p.LayerBase + (long)pos * p.KvDim,
            p.Heads, p.HeadDim, p.KvDim, p.NeoX != 0);
    }

    /// <summary>
    /// Dimension pair <paramref name="i"/> of head <paramref name="h"/> of row <paramref name="r"/> (q heads first, then k
    /// heads) rotated in place at <paramref name="pos"/>; for a k head the rotated pair and v's same pair are also written to
    /// the cache row that starts at <paramref name="cacheRow"/> (<c>[kvDim]</c> in keys and values). The body of
    /// <see cref="KernelWithKvStore"/> and of the batched attention's RoPE + store.
    /// </summary>
    internal static void RotatePairAndStore(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> keys,
        ArrayView<float> values, ArrayView<float> freq, int r, int h, int i, int pos, long cacheRow, int heads, int headDim, int kvDim, bool neoX)
    {
        int half = headDim / 2;
        float tr = ReducedAngle(pos, freq[i]);
        float c = ILGPU.Algorithms.XMath.Cos(tr);
        float s = ILGPU.Algorithms.XMath.Sin(tr);
        int a = neoX ? i : 2 * i;
        int b = neoX ? i + half : 2 * i + 1;
        if (h < heads)
        {
            long head = ((long)r * heads + h) * headDim;
            float x0 = q[head + a], x1 = q[head + b];
            q[head + a] = x0 * c - x1 * s;
            q[head + b] = x0 * s + x1 * c;
        }
        else
        {
            int kh = h - heads;
            long src = (long)r * kvDim + (long)kh * headDim;
            long dst = cacheRow + (long)kh * headDim;
            float x0 = k[src + a], x1 = k[src + b];
            float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
            k[src + a] = y0;
            k[src + b] = y1;
            keys[dst + a] = y0;
            keys[dst + b] = y1;
            values[dst + a] = v[src + a];
            values[dst + b] = v[src + b];
        }
    }

    /// <summary>
    /// <c>theta = pos * freq</c> in f32 (the reference's product), reduced modulo 2π in f64 so that the f32 sine
    /// and cosine keep their accuracy at large positions. Shared by every kernel that rotates.
    /// </summary>
    public static float ReducedAngle(int pos, float freq)
    {
        float theta = pos * freq;
        const double TwoPi = 6.283185307179586;
        double t = theta;
        t -= (long)(t * (1.0 / TwoPi)) * TwoPi; // theta >= 0, so truncation is floor
        return (float)t;
    }
}

/// <summary>Shape of a fused RoPE + KV store launch.</summary>
public struct RopeStoreParams
{
    public int N, Heads, KvHeads, HeadDim, KvDim;

    /// <summary>Position of row 0 when <see cref="N"/> is 1; negative (graph replay): read <c>positions[0]</c>, a device value written before each replay.</summary>
    public int Position0;

    /// <summary>1 for NeoX (halves), 0 for Normal (adjacent pairs).</summary>
    public int NeoX;

    /// <summary>layer * contextLength * kvDim: where this layer's cache starts.</summary>
    public long LayerBase;
}
