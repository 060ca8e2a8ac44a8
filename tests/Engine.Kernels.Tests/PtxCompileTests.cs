using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

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
        using var compiler = new PtxCompiler();
        foreach (var method in methods)
            Assert.Contains(".entry", compiler.Compile(method, dumpName: $"{kernelClass}.{method.Name}"));
    }

    [Fact]
    public void Tile_selection_states_its_512_thread_launch_bound_in_the_ptx()
    {
        // Without .maxntid ptxas may give a thread up to 255 registers, and a 512-thread launch then fails on sm_90 (64K
        // registers per block); with it, ptxas keeps the kernel within 128 (spilling if it must).
        string ptx = PtxCompiler.CompileOne(typeof(TopKSelectKernel).GetMethod(nameof(TopKSelectKernel.KernelTiles))!,
            specialization: IlgpuVectorIndex.SelectSpecialization(IlgpuVectorIndex.SelectGroupSize));
        Assert.Contains($".maxntid {IlgpuVectorIndex.SelectGroupSize}, 1, 1", ptx);
    }
}
