namespace Engine.Cpu.Tests;

/// <summary>
/// Named bounds on the normalized error <c>||a − b|| / ||b||</c> between the CPU backend and the scalar reference.
/// </summary>
internal static class Tolerances
{
    /// <summary>
    /// Q8_0 products: both sides quantize the activations to the same bytes (the quantizer is bit-identical,
    /// tested separately) and form the same exact int32 block sums with the same f32 scales d_w·d_x; only the
    /// order in which the per-block f32 terms are added differs (8 SIMD lanes, then a horizontal sum, versus
    /// one running sum), a few f32 ulps over a row: ~1e-7, bounded here at 1e-6.
    /// </summary>
    public const double Q8MatMul = 1e-6;

    /// <summary>F32/F16/BF16 products: exact widening, then f32 dots summed in a different order (lanes, FMA): ~1e-7.</summary>
    public const double FloatMatMul = 1e-5;

    /// <summary>Elementwise f32 ops and norms (vector exp, double sums in another order): within a few ulps.</summary>
    public const double Elementwise = 1e-5;

    /// <summary>RoPE: same angles bit for bit (same f32 expressions), products without fusion: bit-identical (0) in practice; 1e-7 leaves room for a libm sin/cos that differs by an ulp.</summary>
    public const double Rope = 1e-7;

    /// <summary>Attention: f32 dots in lanes and FMA into the output instead of one running sum: ~1e-7.</summary>
    public const double Attention = 1e-5;

    /// <summary>Normalized error of <paramref name="actual"/> against <paramref name="expected"/>.</summary>
    public static double NormalizedError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException("lengths differ");
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        if (norm == 0) throw new InvalidOperationException("reference output is all zeros: the test input is degenerate");
        return Math.Sqrt(diff / norm);
    }
}
