using Engine.Core.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// Exact-form GELU, one thread per element: <c>dst[i] = 0.5 x (1 + erf(x / √2))</c>, erf by Abramowitz and
/// Stegun 7.1.26 (<see cref="ErfApproximation"/>, absolute error ≤ 1.5e-7), the left tail computed as erfc
/// so it does not cancel against 1. dst may equal x.
/// </summary>
public static class GeluKernel
{
    /// <param name="x">[count] f32</param>
    /// <param name="dst">[count] f32</param>
    public static void Kernel(Index1D i, ArrayView<float> x, ArrayView<float> dst)
    {
        float v = x[i];
        float z = v * ErfApproximation.InvSqrt2;
        float a = z < 0 ? -z : z;
        float t = 1f / (1f + ErfApproximation.P * a);
        float poly = t * (ErfApproximation.A1 + t * (ErfApproximation.A2 + t * (ErfApproximation.A3 + t * (ErfApproximation.A4 + t * ErfApproximation.A5))));
        float e = poly * ILGPU.Algorithms.XMath.Exp(-a * a); // erfc(|z|)
        dst[i] = 0.5f * v * (z >= 0 ? 2f - e : e);
    }
}
