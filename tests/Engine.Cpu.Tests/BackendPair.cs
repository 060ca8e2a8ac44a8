using Engine.Core.Backend;
using Engine.Cpu.Reference;

namespace Engine.Cpu.Tests;

/// <summary>
/// One CPU backend (a given kernel path and thread count) beside the scalar reference, a seeded generator
/// (ENGINE_TEST_SEED repeats a run) and native tensor memory: what each op test compares on.
/// </summary>
internal class BackendPair : IDisposable
{
    public BackendPair(CpuKernelPath path, int threads)
    {
        Seed = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_TEST_SEED"), out int s) ? s : Random.Shared.Next();
        Rng = new Random(Seed);
        Cpu = new CpuBackend(new CpuBackendOptions { Threads = threads, Path = path, SpinMicroseconds = 50 });
        Label = $"{Cpu.Name} threads={threads} seed={Seed}";
    }

    public int Seed { get; }
    public Random Rng { get; }
    public CpuBackend Cpu { get; }
    public ReferenceBackend Reference { get; } = new();
    public TestTensors Tensors { get; } = new();

    /// <summary>Backend, threads and seed, for failure messages.</summary>
    public string Label { get; }

    /// <summary>Uniform in [-scale, scale).</summary>
    public float[] RandomFloats(int count, float scale)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(Rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>A new buffer on <paramref name="be"/> holding <paramref name="data"/>; the caller disposes it.</summary>
    public virtual DeviceBuffer Upload(IComputeBackend be, float[] data)
    {
        var b = be.Allocate(data.Length);
        be.Write(b, data);
        return b;
    }

    public virtual void Dispose()
    {
        Cpu.Dispose();
        Tensors.Dispose();
    }
}
