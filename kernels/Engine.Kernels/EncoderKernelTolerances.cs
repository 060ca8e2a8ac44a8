namespace Engine.Kernels;

/// <summary>
/// Normalized-error bounds (‖kernel − reference‖ / ‖reference‖) of the encoder (BERT) kernels against the
/// scalar <c>ReferenceBackend</c>, which sums in f64 and computes erf by its series. Shared by the kernel
/// tests and the GPU benchmark's checks, as <see cref="KernelTolerances"/> is for the decoder ops.
/// Measured on ILGPU's CPU accelerator (2026-11-26, the kernel tests' shapes): the figure in each comment.
/// </summary>
public static class EncoderKernelTolerances
{
    /// <summary>Rows shifted by their first element, f32 group sums for mean and variance, against f64: measured 9e-8.</summary>
    public const double LayerNorm = 1e-6;

    /// <summary>erf by Abramowitz and Stegun 7.1.26 (absolute error ≤ 1.5e-7) and another exp: measured 4e-8.</summary>
    public const double Gelu = 1e-6;

    /// <summary>
    /// exp from another math library, sums in another order: measured 1.2e-7 on the ILGPU CPU accelerator and 1.3e-6
    /// on an H200 (CUDA's exp goes through ex2 of x·log2 e, whose rounding grows with |x − max|; rows of 1536 with
    /// inputs spread ±10), so the bound leaves room for the device's exp, not for a wrong result (those are ≥ 1e-3).
    /// </summary>
    public const double Softmax = 5e-6;

    /// <summary>As <see cref="KernelTolerances.Attention"/>: another exp and summation order, p·v normalized at the end: measured 1e-7.</summary>
    public const double EncoderAttention = 1e-5;
}
