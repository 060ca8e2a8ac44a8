using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Cpu.Reference;

namespace Engine.Runtime.Tests.Llama;

/// <summary>The backends the runtime tests run on, by name (theory data).</summary>
internal static class TestBackends
{
    /// <summary>The scalar reference, the SIMD CPU backend at its best path on 2 threads, and its portable path on 1.</summary>
    public static TheoryData<string> Names => new() { "reference", "cpu", "cpu-vector256-1t" };

    public static IComputeBackend Create(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "cpu" => new CpuBackend(threads: 2),
        "cpu-vector256-1t" => new CpuBackend(threads: 1, CpuKernelPath.Vector256),
        _ => throw new ArgumentException($"unknown backend {name}", nameof(name)),
    };
}
