namespace Engine.Cpu;

/// <summary>Which family of SIMD kernels <see cref="CpuBackend"/> runs.</summary>
public enum CpuKernelPath
{
    /// <summary>The best the machine offers: <see cref="Avx2"/>, else <see cref="Vector256"/>, else <see cref="Scalar"/>.</summary>
    Auto = 0,

    /// <summary>x86 AVX2 + FMA intrinsics (the maddubs "sign trick" for Q8_0). Throws at construction where unsupported.</summary>
    Avx2 = 1,

    /// <summary>Portable <see cref="System.Runtime.Intrinsics.Vector256"/> code (widen, multiply, add); runs anywhere, fast where 256-bit vectors are accelerated.</summary>
    Vector256 = 2,

    /// <summary>Plain scalar loops, bit-identical to the reference for Q8_0 products.</summary>
    Scalar = 3,
}

/// <summary>Construction options of <see cref="CpuBackend"/>.</summary>
public sealed record CpuBackendOptions
{
    /// <summary>
    /// Number of threads that compute, the calling thread included (it works as worker 0): 1 uses no extra thread.
    /// Defaults to <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Kernel family; <see cref="CpuKernelPath.Auto"/> picks the fastest supported one.</summary>
    public CpuKernelPath Path { get; init; } = CpuKernelPath.Auto;

    /// <summary>
    /// With the <see cref="CpuKernelPath.Avx2"/> path, run batched Q8_0 products on the AVX-512 kernels where the CPU has
    /// AVX-512 F/BW/VL (the default); false keeps every op on AVX2 (for comparisons and tests of the AVX2 kernels).
    /// </summary>
    public bool UseAvx512 { get; init; } = true;

    /// <summary>
    /// How long an idle worker spins waiting for the next op before it blocks (microseconds). Ops of one
    /// decode step follow each other within microseconds, so workers stay spinning during a step and
    /// sleep between requests. 0 blocks at once.
    /// </summary>
    public int SpinMicroseconds { get; init; } = 500;
}
