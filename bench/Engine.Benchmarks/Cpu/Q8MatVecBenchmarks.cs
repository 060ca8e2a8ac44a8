using BenchmarkDotNet.Attributes;
using Engine.Cpu;

namespace Engine.Benchmarks.Cpu;

/// <summary>
/// Q8_0 matrix-vector products on the CPU backend (the best path here: AVX2), 1 and 2 threads, weights
/// hot in cache or streamed from memory. Extra columns: weight GB/s, GOP/s (2·K·M per call) and the fraction
/// of the read bandwidth <see cref="Engine.Cpu.Diagnostics.MemoryBandwidthProbe"/> measures with as many threads.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*Q8MatVec*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MatVecColumnsConfig))]
public class Q8MatVecBenchmarks : IDisposable
{
    private Q8MatVecFixture? _fixture;

    [Params("576x1536", "1536x576", "2048x5632")]
    public string Shape { get; set; } = "576x1536";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [Params(Residency.Hot, Residency.Cold)]
    public Residency Weights { get; set; }

    [GlobalSetup]
    public void Setup() => _fixture = new Q8MatVecFixture(Shape, Threads, CpuKernelPath.Auto, Weights);

    [Benchmark]
    public void MatVec() => _fixture!.Run();

    [GlobalCleanup]
    public void Dispose()
    {
        _fixture?.Dispose();
        _fixture = null;
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// The three kernel families side by side on one core, weights hot: AVX2 (sign trick + maddubs), portable
/// Vector256 (widen and multiply), scalar (the reference's loop).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MatVecColumnsConfig))]
public class Q8MatVecPathBenchmarks : IDisposable
{
    private Q8MatVecFixture? _fixture;

    [Params("576x1536")]
    public string Shape { get; set; } = "576x1536";

    [Params(CpuKernelPath.Avx2, CpuKernelPath.Vector256, CpuKernelPath.Scalar)]
    public CpuKernelPath Path { get; set; }

    [GlobalSetup]
    public void Setup() => _fixture = new Q8MatVecFixture(Shape, 1, Path, Residency.Hot);

    [Benchmark]
    public void MatVec() => _fixture!.Run();

    [GlobalCleanup]
    public void Dispose()
    {
        _fixture?.Dispose();
        _fixture = null;
        GC.SuppressFinalize(this);
    }
}
