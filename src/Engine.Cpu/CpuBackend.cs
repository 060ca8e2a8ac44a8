using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core.Backend;
using Engine.Core.Tensors;
using Engine.Cpu.Threading;

namespace Engine.Cpu;

/// <summary>
/// The SIMD CPU backend: Q8_0 int8 products (AVX2 or portable <see cref="Vector256"/>, scalar beside them),
/// f32 products for F32/F16/BF16 weights, vectorized elementwise ops, and a persistent pool of worker threads
/// (the calling thread is worker 0) released per op by a spin-then-block barrier.
/// Weights are wrapped in place in the GGUF mapping; activations live in pinned, aligned host buffers.
/// Semantics equal <see cref="Reference.ReferenceBackend"/> within the tolerances its tests name.
/// Ops must be called from one thread at a time (the model loop that owns this backend).
/// No op allocates after warm-up: scratch grows on first use of a larger shape.
/// </summary>
public sealed unsafe partial class CpuBackend : IComputeBackend
{
    private readonly WorkerPool _pool;
    private bool _disposed;

    /// <summary>Creates a backend with <see cref="CpuBackendOptions"/> defaults (all cores, best kernels).</summary>
    public CpuBackend() : this(new CpuBackendOptions()) { }

    /// <summary>Creates a backend with <paramref name="threads"/> compute threads (the caller included) and the given kernel path.</summary>
    public CpuBackend(int threads, CpuKernelPath path = CpuKernelPath.Auto) : this(new CpuBackendOptions { Threads = threads, Path = path }) { }

    /// <summary>Creates a backend; throws <see cref="NotSupportedException"/> when a forced path is not supported here.</summary>
    public CpuBackend(CpuBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Threads < 1) throw new ArgumentOutOfRangeException(nameof(options), $"threads must be at least 1, not {options.Threads}");
        Path = ResolvePath(options.Path);
        Threads = options.Threads;
        Q8Batch = ResolveQ8Batch(options.Q8Batch, Path);
        PrefetchNextChunk = options.PrefetchNextChunk;
        _pool = new WorkerPool(options.Threads, options.SpinMicroseconds);
        _workerScratch = new NativeScratch<float>[options.Threads];
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i] = new NativeScratch<float>();
        _matMulJob = new MatMulJob(this);
        _quantizeJob = new QuantizeJob(this);
        _attentionJob = new AttentionJob(this);
    }

    /// <summary>True where the AVX2 path can run (AVX2 and FMA).</summary>
    public static bool IsAvx2Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>True where the AVX-512 batched Q8_0 kernel (<see cref="Q8BatchKernel.Int16Avx512"/>) can run: AVX-512 F, BW, VL and FMA.</summary>
    public static bool IsAvx512Supported => Kernels.Q8_0Avx512TileKernels.IsSupported;

    /// <summary>The kernel batched Q8_0 products take on the <see cref="CpuKernelPath.Avx2"/> path (never <see cref="Q8BatchKernel.Auto"/>).</summary>
    public Q8BatchKernel Q8Batch { get; }

    /// <summary>Whether batched Q8_0 products prefetch each worker's next weight chunk (<see cref="CpuBackendOptions.PrefetchNextChunk"/>).</summary>
    public bool PrefetchNextChunk { get; }

    /// <summary>The kernel family in use (never <see cref="CpuKernelPath.Auto"/>).</summary>
    public CpuKernelPath Path { get; }

    /// <summary>Compute threads, the calling thread included.</summary>
    public int Threads { get; }

    public string Name => Path switch
    {
        CpuKernelPath.Avx2 => "cpu-avx2",
        CpuKernelPath.Vector256 => "cpu-vector256",
        _ => "cpu-scalar",
    };

    /// <summary>The fastest path supported by this machine.</summary>
    public static CpuKernelPath BestPath =>
        IsAvx2Supported ? CpuKernelPath.Avx2 : Vector256.IsHardwareAccelerated ? CpuKernelPath.Vector256 : CpuKernelPath.Scalar;

    private static CpuKernelPath ResolvePath(CpuKernelPath path) => path switch
    {
        CpuKernelPath.Auto => BestPath,
        CpuKernelPath.Avx2 when !IsAvx2Supported => throw new NotSupportedException("the AVX2 kernel path needs AVX2 and FMA, which this CPU does not report"),
        CpuKernelPath.Avx2 or CpuKernelPath.Vector256 or CpuKernelPath.Scalar => path,
        _ => throw new ArgumentOutOfRangeException(nameof(path), $"unknown kernel path {path}"),
    };

    private static Q8BatchKernel ResolveQ8Batch(Q8BatchKernel kernel, CpuKernelPath path) => kernel switch
    {
        Q8BatchKernel.Auto => path == CpuKernelPath.Avx2 && IsAvx512Supported ? Q8BatchKernel.DequantizedF32 : Q8BatchKernel.Int8Avx2,
        Q8BatchKernel.Int16Avx512 when !IsAvx512Supported => throw new NotSupportedException("the Int16Avx512 batched Q8_0 kernel needs AVX-512 F, BW and VL, which this CPU does not report"),
        Q8BatchKernel.Int8Avx2 or Q8BatchKernel.Int16Avx512 or Q8BatchKernel.DequantizedF32 => kernel,
        _ => throw new ArgumentOutOfRangeException(nameof(kernel), $"unknown batched Q8_0 kernel {kernel}"),
    };

    // ---- memory -------------------------------------------------------------------------------

    public DeviceWeight LoadWeight(TensorView tensor) => new CpuWeight(tensor);

    public DeviceBuffer Allocate(int length) => CpuBuffer.Create(length);

    public KvCache AllocateKvCache(int layers, int contextLength, int kvDim) => new CpuKvCache(layers, contextLength, kvDim);

    public void Write(DeviceBuffer dst, ReadOnlySpan<float> src)
    {
        var d = Buf(dst);
        if (src.Length > d.Length) throw new ArgumentException($"writing {src.Length} floats into a buffer of {d.Length}", nameof(src));
        src.CopyTo(d.Span);
    }

    public void Read(DeviceBuffer src, Span<float> dst)
    {
        var s = Buf(src);
        if (dst.Length > s.Length) throw new ArgumentException($"reading {dst.Length} floats from a buffer of {s.Length}", nameof(dst));
        s.Span[..dst.Length].CopyTo(dst);
    }

    public void Embed(DeviceWeight table, ReadOnlySpan<int> tokens, DeviceBuffer dst)
    {
        var t = Wt(table);
        var y = Buf(dst);
        Need(y, (long)tokens.Length * t.Cols, nameof(dst));
        for (int r = 0; r < tokens.Length; r++)
        {
            if ((uint)tokens[r] >= (uint)t.Rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[r]} outside vocabulary of {t.Rows}");
            RowDecoding.ToFloat(t.View, tokens[r], new Span<float>(y.Ptr + (long)r * t.Cols, t.Cols));
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _pool.Dispose();
        foreach (var s in _workerScratch) s.Dispose();
        _xq.Dispose();
        _xd.Dispose();
        _xf.Dispose();
        _rope.Dispose();
    }

    // ---- helpers ------------------------------------------------------------------------------

    private static CpuBuffer Buf(DeviceBuffer b) =>
        b as CpuBuffer ?? throw new ArgumentException($"buffer of type {b?.GetType().Name ?? "null"} does not belong to the CPU backend");

    private static CpuWeight Wt(DeviceWeight w) =>
        w as CpuWeight ?? throw new ArgumentException($"weight of type {w?.GetType().Name ?? "null"} does not belong to the CPU backend");

    private static CpuKvCache Kv(KvCache c) =>
        c as CpuKvCache ?? throw new ArgumentException($"KV cache of type {c?.GetType().Name ?? "null"} does not belong to the CPU backend");

    private static void Need(CpuBuffer b, long length, string name)
    {
        if (b.Length < length) ThrowTooSmall(b, length, name);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowTooSmall(CpuBuffer b, long length, string name) =>
        throw new ArgumentException($"{name} holds {b.Length} floats, the op needs {length}", name);
}
