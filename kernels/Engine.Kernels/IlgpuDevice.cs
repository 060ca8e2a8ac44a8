using System.Diagnostics.CodeAnalysis;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

/// <summary>
/// An ILGPU context and one accelerator: CUDA when a usable GPU is present, else ILGPU's CPU
/// accelerator (correctness only: about 200× slower than AVX2 code). Shared by
/// <see cref="IlgpuBackend"/> and <see cref="IlgpuVectorIndex"/>.
/// </summary>
public sealed class IlgpuDevice : IDisposable
{
    /// <summary>Threads per group we aim for on a GPU (8 warps of 32); capped by the accelerator.</summary>
    public const int PreferredGroupSize = 256;

    private IlgpuDevice(Context context, Accelerator accelerator, OptimizationLevel level = OptimizationLevel.O1, bool cudaShaped = false)
    {
        Optimization = level;
        IsCudaShaped = accelerator.AcceleratorType == AcceleratorType.Cuda || cudaShaped;
        Context = context;
        Accelerator = accelerator;
        GroupSize = Math.Min(PreferredGroupSize, accelerator.MaxNumThreadsPerGroup);
        GroupSize -= GroupSize % accelerator.WarpSize;
        Description = Describe(accelerator, IsCudaShaped);
    }

    public Context Context { get; }
    public Accelerator Accelerator { get; }

    /// <summary>ILGPU optimization level of this device's context (every kernel loaded on it is compiled at this level).</summary>
    public OptimizationLevel Optimization { get; }

    /// <summary>True when this is a CUDA GPU.</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>
    /// True on CUDA, and on a CPU accelerator built by <see cref="CreateCudaShapedCpu"/>: the launch shapes (warp 32, groups of
    /// up to 1,024 threads, hence 256-thread row groups, 128/256-thread attention groups, the 512-thread top-k selection) and the
    /// CUDA-only kernel forms that depend only on the shape (the folds' thread-per-element quantization) are CUDA's. What needs
    /// the driver (own stream, graphs, events, inline PTX, the timed matrix-vector choice) still asks <see cref="IsCuda"/>.
    /// </summary>
    public bool IsCudaShaped { get; }

    /// <summary>Threads per group used by the row kernels: a multiple of the warp size.</summary>
    public int GroupSize { get; }

    /// <summary>One line: kind, name, and for CUDA the driver version, compute capability and memory.</summary>
    public string Description { get; }

    /// <summary>
    /// Tries to open the first CUDA GPU and compile a trivial kernel on it (which surfaces a missing or
    /// old driver, an unsupported architecture or a PTX failure now rather than mid-run).
    /// </summary>
    /// <returns>False with a one-line <paramref name="reason"/> when there is no usable GPU.</returns>
    public static bool TryCreateCuda([NotNullWhen(true)] out IlgpuDevice? device, out string reason) => TryCreateCuda(out device, out reason, o2: null);

    /// <summary>
    /// <see cref="TryCreateCuda(out IlgpuDevice?, out string)"/> with the optimization level chosen here: <paramref name="o2"/>
    /// true = O2, false = O1, null = the default (O2 unless <c>ENGINE_ILGPU_O2=0</c>). A second device (its own context)
    /// lets one set of kernels run at another level than the rest, e.g. the vector index at O1 if O2 slows it
    /// (bench/RESULTS.md run 7: O2 took the old top-k selection from 298 to 388 µs).
    /// </summary>
    public static bool TryCreateCuda([NotNullWhen(true)] out IlgpuDevice? device, out string reason, bool? o2)
    {
        device = null;
        Context? context = null;
        Accelerator? accelerator = null;
        try
        {
            // ILGPU's O2 optimization level on CUDA: on the H200 it took the Q8_0 matvec from 30 % to 56 % of copy
            // bandwidth and TinyLlama-shaped decode from 417 to 502 tok/s (bench/RESULTS.md, run 7).
            // ENGINE_ILGPU_O2=0 turns it off for A/B runs.
            bool useO2 = o2 ?? Environment.GetEnvironmentVariable("ENGINE_ILGPU_O2") != "0";
            context = Context.Create(b =>
            {
                b.Cuda().EnableAlgorithms();
                if (useO2) b.Optimize(OptimizationLevel.O2);
            });
            var gpus = context.GetCudaDevices();
            if (gpus.Count == 0)
            {
                context.Dispose();
                reason = "no CUDA device found (no NVIDIA GPU or no CUDA driver)";
                return false;
            }
            accelerator = gpus[0].CreateAccelerator(context);
            using (var probe = accelerator.Allocate1D<int>(1))
            {
                var kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>>(Probe);
                kernel(1, probe.View);
                accelerator.Synchronize();
            }
            device = new IlgpuDevice(context, accelerator, useO2 ? OptimizationLevel.O2 : OptimizationLevel.O1);
            reason = "";
            return true;
        }
        catch (Exception e)
        {
            accelerator?.Dispose();
            context?.Dispose();
            reason = $"CUDA unavailable: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    /// <summary>
    /// ILGPU's CPU accelerator (always available), simulating groups of
    /// <paramref name="warpsPerGroup"/> warps of <paramref name="threadsPerWarp"/> threads. The default
    /// (2 × 2) still exercises shuffles and cross-warp reductions while keeping the barrier cost low
    /// on a 2-core machine: the 4 × 4 default of ILGPU ran the stories260K test about 3× slower here.
    /// </summary>
    public static IlgpuDevice CreateCpu(int threadsPerWarp = 2, int warpsPerGroup = 2)
    {
        var cpu = new CPUDevice(threadsPerWarp, warpsPerGroup, numMultiprocessors: 1);
        var context = Context.Create(b => b.CPU(cpu).EnableAlgorithms());
        return new IlgpuDevice(context, context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel));
    }

    /// <summary>Threads per warp of every CUDA GPU (and of <see cref="CreateCudaShapedCpu"/>).</summary>
    public const int CudaWarpSize = 32;

    /// <summary>Most threads per group on every CUDA GPU since compute capability 2.0 (and on <see cref="CreateCudaShapedCpu"/>).</summary>
    public const int CudaMaxGroupSize = 1024;

    /// <summary>
    /// Multiprocessors of <see cref="CreateCudaShapedCpu"/>: two, so that two groups of a launch run at once (ILGPU gives each
    /// simulated multiprocessor a contiguous half of the grid), as groups do on a GPU's many SMs: the flash merge's chunks
    /// of one head then count and merge concurrently, which one multiprocessor, running groups one after another, never does.
    /// </summary>
    public const int CudaShapedMultiprocessors = 2;

    /// <summary>
    /// ILGPU's CPU accelerator shaped like a CUDA GPU: warps of <see cref="CudaWarpSize"/> lanes and groups of up to
    /// <see cref="CudaMaxGroupSize"/> threads, so that every kernel is launched with the group sizes it gets on CUDA (the
    /// default CPU device allows 4 threads per group, the 32-lane test device 32) and <see cref="IsCudaShaped"/> takes the
    /// CUDA choices. For tests of the launch shapes only: each simulated thread is an OS thread (a 256-thread group is 256
    /// threads meeting at every barrier), so keep shapes small; the accelerator runs every launch with as many threads as
    /// its largest group so far, so give a 512-thread kernel a device of its own.
    /// </summary>
    /// <param name="multiprocessors">Groups run at once (<see cref="CudaShapedMultiprocessors"/> by default; 1 halves the threads
    /// where kernels' groups do not communicate).</param>
    public static IlgpuDevice CreateCudaShapedCpu(int multiprocessors = CudaShapedMultiprocessors)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(multiprocessors);
        var cpu = new CPUDevice(CudaWarpSize, CudaMaxGroupSize / CudaWarpSize, multiprocessors);
        var context = Context.Create(b => b.CPU(cpu).EnableAlgorithms());
        return new IlgpuDevice(context, context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel), cudaShaped: true);
    }

    /// <summary>CUDA when usable, else the CPU accelerator; writes one line naming the device to <paramref name="log"/>.</summary>
    public static IlgpuDevice CreateBest(TextWriter? log)
    {
        if (TryCreateCuda(out var gpu, out var reason))
        {
            log?.WriteLine($"ilgpu: {gpu!.Description}");
            return gpu;
        }
        var cpu = CreateCpu();
        log?.WriteLine($"ilgpu: {cpu.Description} ({reason})");
        return cpu;
    }

    private static void Probe(Index1D i, ArrayView<int> x) => x[i] = 1;

    private static string Describe(Accelerator a, bool cudaShaped)
    {
        if (a is CudaAccelerator cuda)
            return $"cuda: {a.Name}, driver {cuda.DriverVersion}, compute capability {cuda.Architecture}, "
                 + $"{a.MemorySize / (1024 * 1024)} MiB, {a.NumMultiprocessors} SMs, PTX {cuda.InstructionSet}";
        return $"cpu: {a.Name}, warp {a.WarpSize}, max group {a.MaxNumThreadsPerGroup}{(cudaShaped ? " (CUDA-shaped)" : "")}";
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
