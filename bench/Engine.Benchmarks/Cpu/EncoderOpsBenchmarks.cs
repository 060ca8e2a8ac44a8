using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Tensors;
using Engine.Cpu;

namespace Engine.Benchmarks.Cpu;

/// <summary>
/// The encoder (BERT) ops of the CPU backend at all-MiniLM-L6-v2's shape (hidden 384, 12 heads of 32,
/// intermediate 1536) for one batch of 8 sequences of 64 tokens: the best SIMD path against the scalar path
/// side by side, 1 and 2 threads. The memory diagnoser shows the ops allocate nothing after warm-up.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*EncoderOps*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public unsafe class EncoderOpsBenchmarks : IDisposable
{
    private const int Dim = 384, FeedForward = 1536, Heads = 12, HeadDim = 32, Sequences = 8, Length = 64;
    private const int Rows = Sequences * Length;

    private CpuBackend? _cpu;
    private float* _norm; // [2, Dim] f32: LayerNorm weight, then bias
    private DeviceWeight? _weight, _bias;
    private DeviceBuffer? _x, _y, _k, _v, _h, _g;
    private readonly int[] _lengths = Enumerable.Repeat(Length, Sequences).ToArray();

    [Params(CpuKernelPath.Auto, CpuKernelPath.Scalar)]
    public CpuKernelPath Path { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _cpu = new CpuBackend(Threads, Path);
        _norm = (float*)NativeMemory.AlignedAlloc(2 * Dim * sizeof(float), 64);
        for (int i = 0; i < 2 * Dim; i++) _norm[i] = (float)rng.NextDouble();
        _weight = _cpu.LoadWeight(new TensorView("ln.weight", GgmlType.F32, [Dim], (byte*)_norm));
        _bias = _cpu.LoadWeight(new TensorView("ln.bias", GgmlType.F32, [Dim], (byte*)(_norm + Dim)));
        _x = Filled(Rows * Dim, rng, 3f);
        _k = Filled(Rows * Dim, rng, 2f);
        _v = Filled(Rows * Dim, rng, 1f);
        _y = _cpu.Allocate(Rows * Dim);
        _h = Filled(Rows * FeedForward, rng, 4f);
        _g = _cpu.Allocate(Rows * FeedForward);
    }

    private DeviceBuffer Filled(int count, Random rng, float scale)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        var b = _cpu!.Allocate(count);
        _cpu.Write(b, values);
        return b;
    }

    [Benchmark]
    public void LayerNorm() => _cpu!.LayerNorm(_x!, _weight!, _bias!, _y!, Rows, Dim, 1e-12f);

    /// <summary>Out of place: repeated in place, small values would halve towards denormals.</summary>
    [Benchmark]
    public void Gelu() => _cpu!.Gelu(_h!, _g!, Rows * FeedForward);

    [Benchmark]
    public void EncoderAttention() => _cpu!.EncoderAttention(_x!, _k!, _v!, _y!, _lengths, Heads, HeadDim, 1f / MathF.Sqrt(HeadDim));

    [GlobalCleanup]
    public void Dispose()
    {
        _cpu?.Dispose();
        _cpu = null;
        if (_norm is not null) NativeMemory.AlignedFree(_norm);
        _norm = null;
        GC.SuppressFinalize(this);
    }
}
