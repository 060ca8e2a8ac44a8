using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels.Tests;

/// <summary>
/// Every kernel goes through ILGPU's PTX backend for an H100/H200 (sm_90) here, without a GPU, so that a
/// construct the CUDA backend cannot compile fails in CI rather than on a scarce device run.
/// </summary>
public class PtxCompileTests
{
    public static TheoryData<string> Kernels => new()
    {
        nameof(QuantizeQ8_0Kernel),
        nameof(MatVecQ8_0Kernel),
        nameof(NormMatVecQ8_0Kernel),
        nameof(GateUpSwiGluKernel),
        nameof(MatVecFloatKernel),
        nameof(RmsNormKernel),
        nameof(RopeKernel),
        nameof(KvStoreKernel),
        nameof(AttentionKernel),
        nameof(BatchAttentionKernel),
        nameof(SwiGluKernel),
        nameof(SwiGluQuantizeKernel),
        nameof(AddKernel),
        nameof(AddBiasKernel),
        nameof(EmbedKernel),
        nameof(SimilarityKernel),
        nameof(TopKSelectKernel),
    };

    [Theory, MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_ptx_for_sm_90(string kernelClass)
    {
        var type = typeof(IlgpuBackend).Assembly.GetType("Engine.Kernels." + kernelClass)!;
        var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.Name.StartsWith("Kernel", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(methods);
        using var context = Context.Create(b => b.CPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        foreach (var method in methods)
        {
            // An index first parameter marks an implicitly grouped kernel; the others take a KernelConfig.
            var first = method.GetParameters()[0].ParameterType;
            bool implicitlyGrouped = first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
            var entry = implicitlyGrouped
                ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
                : EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            Assert.Contains(".entry", compiled.PTXAssembly);
            string? dump = Environment.GetEnvironmentVariable("ENGINE_PTX_DUMP");
            if (!string.IsNullOrEmpty(dump)) File.WriteAllText(Path.Combine(dump, $"{kernelClass}.{method.Name}.ptx"), compiled.PTXAssembly);
        }
    }

    [Fact]
    public void Tile_selection_states_its_512_thread_launch_bound_in_the_ptx()
    {
        // Without .maxntid ptxas may give a thread up to 255 registers, and a 512-thread launch then fails on sm_90 (64K
        // registers per block); with it, ptxas keeps the kernel within 128 (spilling if it must).
        using var context = Context.Create(b => b.CPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var method = typeof(TopKSelectKernel).GetMethod(nameof(TopKSelectKernel.KernelTiles))!;
        var spec = IlgpuVectorIndex.SelectSpecialization(IlgpuVectorIndex.SelectGroupSize);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), spec);
        Assert.Contains($".maxntid {IlgpuVectorIndex.SelectGroupSize}, 1, 1", compiled.PTXAssembly);
    }
}
