namespace Engine.Core.Numerics;

/// <summary>
/// The error function in f32 for the GELU of the fast backends (CPU SIMD and ILGPU kernels share these
/// constants): Abramowitz and Stegun, <i>Handbook of Mathematical Functions</i> (1964), formula 7.1.26
/// (after C. Hastings, <i>Approximations for Digital Computers</i>, 1955): for x ≥ 0,
/// <c>erfc(x) ≈ (a1 t + a2 t² + a3 t³ + a4 t⁴ + a5 t⁵) e^(−x²)</c> with <c>t = 1 / (1 + p x)</c>,
/// absolute error at most 1.5e-7. The scalar reference computes erf in f64 by its series instead
/// (Engine.Cpu's <c>ReferenceBackend</c>), so tests measure this approximation, not assume it.
/// </summary>
public static class ErfApproximation
{
    /// <summary>A&amp;S 7.1.26 constants.</summary>
    public const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    /// <summary>1/√2: GELU evaluates erf(x/√2).</summary>
    public const float InvSqrt2 = 0.70710678118654752f;

    /// <summary>
    /// <c>1 + erf(z)</c>: <c>2 − erfc(|z|)</c> for z ≥ 0, <c>erfc(|z|)</c> for z &lt; 0, so the left tail keeps its
    /// relative accuracy instead of cancelling against 1.
    /// </summary>
    public static float OnePlusErf(float z)
    {
        float a = MathF.Abs(z);
        float t = 1f / (1f + P * a);
        float poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
        float e = poly * MathF.Exp(-a * a);
        return z >= 0 ? 2f - e : e;
    }

    /// <summary>Exact-form GELU with this erf: <c>0.5 x (1 + erf(x / √2))</c>.</summary>
    public static float Gelu(float x) => 0.5f * x * OnePlusErf(x * InvSqrt2);
}
