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
    public static TheoryData<string, bool> Kernels => new()
    {
        { nameof(QuantizeQ8_0Kernel), false },
        { nameof(MatVecQ8_0Kernel), true },
        { nameof(MatVecFloatKernel), true },
        { nameof(RmsNormKernel), true },
        { nameof(RopeKernel), false },
        { nameof(KvStoreKernel), false },
        { nameof(AttentionKernel), true },
        { nameof(SwiGluKernel), false },
        { nameof(SwiGluQuantizeKernel), false },
        { nameof(AddKernel), false },
        { nameof(AddBiasKernel), false },
        { nameof(EmbedKernel), false },
        { nameof(SimilarityKernel), true },
        { nameof(TopKSelectKernel), true },
    };

    [Theory, MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_ptx_for_sm_90(string kernelClass, bool explicitlyGrouped)
    {
        var type = typeof(IlgpuBackend).Assembly.GetType("Engine.Kernels." + kernelClass)!;
        var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.Name.StartsWith("Kernel", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(methods);
        using var context = Context.Create(b => b.CPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        foreach (var method in methods)
        {
            var entry = explicitlyGrouped
                ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
                : EntryPointDescription.FromImplicitlyGroupedKernel(method);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            Assert.Contains(".entry", compiled.PTXAssembly);
            string? dump = Environment.GetEnvironmentVariable("ENGINE_PTX_DUMP");
            if (!string.IsNullOrEmpty(dump)) File.WriteAllText(Path.Combine(dump, $"{kernelClass}.{method.Name}.ptx"), compiled.PTXAssembly);
        }
    }
}
