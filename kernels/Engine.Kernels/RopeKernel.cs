using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>Shape of a RoPE launch.</summary>
public struct RopeParams
{
    public int N, Heads, HeadDim;

    /// <summary>Position of row 0 when <see cref="N"/> is 1 (decode: no position upload).</summary>
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
    /// <param name="positions">[n] int (read when n &gt; 1)</param>
    /// <param name="freq">[headDim / 2] f32</param>
    public static void Kernel(Index1D idx, ArrayView<float> x, ArrayView<int> positions, ArrayView<float> freq, RopeParams p)
    {
        int half = p.HeadDim / 2;
        int i = idx % half;
        int rh = idx / half; // r * heads + h
        int r = rh / p.Heads;
        int pos = p.N == 1 ? p.Position0 : positions[r];
        float theta = pos * freq[i];
        const double TwoPi = 6.283185307179586;
        double t = theta;
        t -= (long)(t * (1.0 / TwoPi)) * TwoPi; // theta >= 0, so truncation is floor
        float tr = (float)t;
        float c = ILGPU.Algorithms.XMath.Cos(tr);
        float s = ILGPU.Algorithms.XMath.Sin(tr);
        long head = (long)rh * p.HeadDim;
        long a = head + (p.NeoX != 0 ? i : 2 * i);
        long b = head + (p.NeoX != 0 ? i + half : 2 * i + 1);
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}
