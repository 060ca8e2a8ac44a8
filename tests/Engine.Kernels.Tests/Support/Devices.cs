using Engine.Kernels;

namespace Engine.Kernels.Tests;

/// <summary>
/// The accelerators the kernel suite runs on: ILGPU's CPU accelerator always, CUDA when a GPU is
/// present. One backend per device for the whole run (creating one compiles every kernel).
/// </summary>
public static class Devices
{
    private static readonly Lazy<IlgpuBackend> _cpu = new(IlgpuBackend.CreateCpu);
    // 32-lane warps on the CPU: runs the thread-per-element quantizing paths that CUDA takes.
    private static readonly Lazy<IlgpuBackend> _cpu32 = new(() => new IlgpuBackend(IlgpuDevice.CreateCpu(threadsPerWarp: 32, warpsPerGroup: 1)));
    // CUDA's launch shapes on the CPU (warp 32, groups up to 1,024: 256-thread row groups, 128-thread flash groups, the
    // folds' per-lane quantizing): the "cudashape" theory rows of the focused tests of kernels untested on hardware.
    private static readonly Lazy<IlgpuBackend> _cudaShaped = new(() => new IlgpuBackend(IlgpuDevice.CreateCudaShapedCpu()));
    private static readonly Lazy<(IlgpuBackend? Backend, string Reason)> _cuda = new(() =>
        IlgpuBackend.TryCreateCuda(out var b, out var reason) ? (b, "") : (null, reason));

    /// <summary>Every backend's accelerator is used by one test at a time (the suite is one serial class).</summary>
    public static IlgpuBackend Get(string name) => name switch
    {
        "cpu" => _cpu.Value,
        "cpu32" => _cpu32.Value,
        CudaShaped => _cudaShaped.Value,
        "cuda" => _cuda.Value.Backend ?? throw new InvalidOperationException(_cuda.Value.Reason),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Name of the CUDA-shaped CPU backend (<see cref="IlgpuDevice.CreateCudaShapedCpu"/>): slow, so small shapes only.</summary>
    public const string CudaShaped = "cudashape";

    public static bool CudaPresent => _cuda.Value.Backend is not null;

    public static string CudaReason => _cuda.Value.Reason;

    /// <summary>Theory data: "cpu", plus "cuda" when a GPU is present.</summary>
    public static TheoryData<string> Names
    {
        get
        {
            var data = new TheoryData<string> { "cpu" };
            if (CudaPresent) data.Add("cuda");
            return data;
        }
    }
}

/// <summary>A fact that is skipped, saying why, when no CUDA GPU is usable.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!Devices.CudaPresent) Skip = "no CUDA GPU: " + Devices.CudaReason;
    }
}
