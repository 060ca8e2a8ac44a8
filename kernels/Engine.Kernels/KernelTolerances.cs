namespace Engine.Kernels;

/// <summary>
/// Normalized-error bounds (‖kernel − reference‖ / ‖reference‖) that every ILGPU op must meet against
/// the scalar <c>ReferenceBackend</c> on fresh random inputs. One definition for the kernel tests and
/// the GPU benchmark's checks, so both hold the kernels to the same bar.
/// </summary>
public static class KernelTolerances
{
    /// <summary>Same quantized inputs, same int32 block sums: only the f32 order of summing blocks differs.</summary>
    public const double Q8MatMul = 1e-5;

    /// <summary>f32 products summed in another order.</summary>
    public const double FloatMatMul = 1e-5;

    /// <summary>The reference sums squares in f64, the kernel in f32.</summary>
    public const double RmsNorm = 1e-6;

    /// <summary>theta reduced mod 2π in f64 before an f32 sine/cosine, against MathF on the full angle.</summary>
    public const double Rope = 1e-5;

    /// <summary>Softmax with a different exp and summation order; p·v normalized at the end.</summary>
    public const double Attention = 1e-5;

    /// <summary>exp from another math library.</summary>
    public const double SwiGlu = 1e-6;

    /// <summary>
    /// A whole decoder pass. Activations are re-quantized to int8 before every product, so a last-bit f32
    /// difference upstream (f32 vs f64 RMSNorm sums, another exp) can move one value across a rounding
    /// boundary and change an int8 by one step: measured 5e-3 on a 2-layer d=64 model. A wrong kernel gives ~1.
    /// </summary>
    public const double Forward = 1e-2;

    /// <summary>Similarity scores: int32 dot products scaled in f32.</summary>
    public const double Score = 1e-5;

    /// <summary>
    /// Similarity scores of the wide scan (<see cref="SimilarityKernel.KernelWide"/>) against an f32-query reference,
    /// relative to the best score: the query is quantized to int16 (half a step of 2^-15 · |q|max per value), so a
    /// score moves by about 2^-16 · |q|max · ‖m‖ / sqrt(3); the SIMD CPU scanner's tests bound the same scheme by 1e-4.
    /// </summary>
    public const double WideScore = 1e-4;
}
