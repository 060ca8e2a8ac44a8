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

    private IlgpuDevice(Context context, Accelerator accelerator, OptimizationLevel level = OptimizationLevel.O1)
    {
        Optimization = level;
        Context = context;
        Accelerator = accelerator;
        GroupSize = Math.Min(PreferredGroupSize, accelerator.MaxNumThreadsPerGroup);
        GroupSize -= GroupSize % accelerator.WarpSize;
        Description = Describe(accelerator);
    }

    public Context Context { get; }
    public Accelerator Accelerator { get; }

    /// <summary>ILGPU optimization level of this device's context (every kernel loaded on it is compiled at this level).</summary>
    public OptimizationLevel Optimization { get; }

    /// <summary>True when this is a CUDA GPU.</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

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

    private static string Describe(Accelerator a)
    {
        if (a is CudaAccelerator cuda)
            return $"cuda: {a.Name}, driver {cuda.DriverVersion}, compute capability {cuda.Architecture}, "
                 + $"{a.MemorySize / (1024 * 1024)} MiB, {a.NumMultiprocessors} SMs, PTX {cuda.InstructionSet}";
        return $"cpu: {a.Name}, warp {a.WarpSize}, max group {a.MaxNumThreadsPerGroup}";
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
