using Engine.Core.Backend;
using Engine.Cpu.Reference;

namespace Engine.Runtime.Tests.Llama;

/// <summary>The backends the runtime tests run on, by name (theory data).</summary>
internal static class TestBackends
{
    public static TheoryData<string> Names => new() { "reference" };

    public static IComputeBackend Create(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        _ => throw new ArgumentException($"unknown backend {name}", nameof(name)),
    };
}
