namespace Engine.Cpu.Tests;

/// <summary>
/// Named bounds on the normalized error <c>||cpu − reference|| / ||reference||</c> of the encoder ops. The
/// reference sums in f64 and computes erf by its series; the CPU backend works in f32 with SIMD lanes.
/// Each comment gives the largest error measured over the tests' shapes and paths (2026-11-26, the 2-core AVX-512 development VM).
/// </summary>
internal static class EncoderTolerances
{
    /// <summary>
    /// Rows shifted by their first element, then mean, variance and scaling in f32 lanes (the scalar path sums in
    /// f64), against all-f64, on rows offset by up to 143: measured up to 2.6e-7.
    /// </summary>
    public const double LayerNorm = 1e-6;

    /// <summary>erf by Abramowitz and Stegun 7.1.26 (absolute error ≤ 1.5e-7) and a vector exp: measured up to 5.4e-8.</summary>
    public const double Gelu = 1e-6;

    /// <summary>Vector exp and lane sums: measured up to 2.9e-7.</summary>
    public const double Softmax = 1e-6;

    /// <summary>f32 dots in lanes with FMA and a vector exp in the softmax: measured up to 2.7e-7.</summary>
    public const double EncoderAttention = 1e-5;
}
