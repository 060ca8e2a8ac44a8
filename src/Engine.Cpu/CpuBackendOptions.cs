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

/// <summary>
/// Kernels for batched Q8_0 · Q8_0 products (prompts, encoder batches, continuous-batching decode steps). All quantize the
/// activations the same way and agree with the reference within the same bound; they differ in speed per CPU.
/// </summary>
public enum Q8BatchKernel
{
    /// <summary>
    /// <see cref="DequantizedF32"/> where the CPU has AVX-512 F/BW/VL (Zen 4 class, where FMA throughput outruns the integer
    /// multipliers: measured in bench/RESULTS.md), else <see cref="Int8Avx2"/>.
    /// </summary>
    Auto = 0,

    /// <summary>2 × 4 register tile of int8 maddubs with the sign trick (AVX2 + FMA).</summary>
    Int8Avx2 = 1,

    /// <summary>4 × 4 register tile of blocks widened to int16 and multiplied by 512-bit vpmaddwd (AVX-512 F/BW/VL).</summary>
    Int16Avx512 = 2,

    /// <summary>Weight chunks and activations dequantized to f32 (exact), then the f32 4 × 4 FMA tile (AVX2 + FMA).</summary>
    DequantizedF32 = 3,
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
    /// Kernel for batched Q8_0 products (n ≥ 4 activation rows) on the <see cref="CpuKernelPath.Avx2"/> path;
    /// <see cref="Q8BatchKernel.Auto"/> picks the fastest measured for this CPU. Other paths ignore it.
    /// </summary>
    public Q8BatchKernel Q8Batch { get; init; } = Q8BatchKernel.Auto;

    /// <summary>
    /// Whether batched Q8_0 products on the <see cref="Q8BatchKernel.DequantizedF32"/> kernel fetch each worker's next chunk of
    /// weights into L2 while computing the current one (software prefetch). A decode step of many streams reads every weight
    /// from DRAM once and computes on it for a while; without this the two alternate per chunk. False keeps the old form
    /// (for side-by-side measurement); the default is false where the environment variable ENGINE_CPU_PREFETCH is "0".
    /// </summary>
    public bool PrefetchNextChunk { get; init; } = Environment.GetEnvironmentVariable("ENGINE_CPU_PREFETCH") != "0";

    /// <summary>
    /// How long an idle worker spins waiting for the next op before it blocks (microseconds). Ops of one
    /// decode step follow each other within microseconds, so workers stay spinning during a step and
    /// sleep between requests. 0 blocks at once.
    /// </summary>
    public int SpinMicroseconds { get; init; } = 500;
}
