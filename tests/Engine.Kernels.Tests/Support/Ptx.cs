using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels.Tests;

/// <summary>
/// Compiles kernels to PTX for sm_90 on a machine without a GPU (ILGPU's PTX backend over a CPU context), so the suite can
/// check what the CUDA build of a kernel contains (launch bounds, 64-bit loads, dp4a). <c>ENGINE_PTX_DUMP=DIR</c> writes each
/// compiled kernel to DIR/NAME.ptx when the caller names it.
/// </summary>
internal sealed class PtxCompiler : IDisposable
{
    private readonly Context _context;
    private readonly PTXBackend _backend;

    /// <param name="level">The context's optimization level (null: ILGPU's default); IlgpuDevice compiles for CUDA at O2.</param>
    public PtxCompiler(OptimizationLevel? level = null)
    {
        _context = Context.Create(b =>
        {
            b.CPU().EnableAlgorithms();
            if (level is { } l) b.Optimize(l);
        });
        _backend = new PTXBackend(_context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
    }

    /// <summary>
    /// The PTX of <paramref name="method"/>: implicitly grouped when its first parameter is an index (Index1D/2D/3D), else
    /// explicitly grouped (a KernelConfig launch).
    /// </summary>
    public string Compile(MethodInfo method, KernelSpecialization? specialization = null, string? dumpName = null)
    {
        var first = method.GetParameters()[0].ParameterType;
        bool implicitlyGrouped = first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
        var entry = implicitlyGrouped
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        string ptx = ((PTXCompiledKernel)_backend.Compile(entry, specialization ?? KernelSpecialization.Empty)).PTXAssembly;
        string? dump = Environment.GetEnvironmentVariable("ENGINE_PTX_DUMP");
        if (dumpName is not null && !string.IsNullOrEmpty(dump)) File.WriteAllText(Path.Combine(dump, dumpName + ".ptx"), ptx);
        return ptx;
    }

    /// <summary>One kernel's PTX with a compiler of its own.</summary>
    public static string CompileOne(MethodInfo method, OptimizationLevel? level = null, KernelSpecialization? specialization = null, string? dumpName = null)
    {
        using var compiler = new PtxCompiler(level);
        return compiler.Compile(method, specialization, dumpName);
    }

    public void Dispose()
    {
        _backend.Dispose();
        _context.Dispose();
    }
}

/// <summary>Q8_0 weight blocks as they lie in a GGUF file, read as ushorts: an f16 scale, then 32 int8 (17 ushorts).</summary>
internal static class Q8Blocks
{
    /// <summary>Ushorts per Q8_0 block.</summary>
    public const int UShorts = 17;

    /// <summary>rows × blocks random blocks: scales in [0.001, 0.011), every int8 drawn from the whole range.</summary>
    public static ushort[] Random(Random random, int rows, int blocks)
    {
        var w = new ushort[rows * blocks * UShorts];
        for (int b = 0; b < rows * blocks; b++)
        {
            int at = b * UShorts;
            w[at] = BitConverter.HalfToUInt16Bits((System.Half)(0.001f + random.NextSingle() * 0.01f));
            for (int j = 1; j < UShorts; j++) w[at + j] = (ushort)random.Next(0x10000);
        }
        return w;
    }
}
