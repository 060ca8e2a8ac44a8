using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;
using Engine.Cpu;

namespace Engine.Benchmarks.Cpu;

/// <summary>
/// The batched Q8_0 product of a continuous-batching decode step: <c>CpuBackend.MatMul</c> with N = 1, 4, 8, 16 activation
/// rows (streams) over SmolLM2-135M's shapes ("KxM": M output rows of K inputs: attention q/o 576x576, k/v 576x192, ffn
/// up/gate 576x1536, ffn down 1536x576, output head 576x49152), 2 threads, each batched kernel, with and without the
/// next-chunk prefetch, weights streamed from memory as in a decode step (<see cref="Residency.Cold"/>: copies totalling
/// <see cref="Q8MatVecFixture.ColdBytes"/> used in turn). N = 1 takes the per-row kernel whatever the kernel parameter says.
/// The GMAC/s column is K·M·N multiply-adds per second of the fastest iteration.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*Q8DecodeBatch*' --job short</c>.
/// </summary>
[Config(typeof(Q8TileColumnsConfig))]
[MinColumn]
public unsafe class Q8DecodeBatchBenchmarks : IDisposable
{
    private byte* _data;
    private CpuBackend? _backend;
    private DeviceBuffer? _x, _y;
    private DeviceWeight[] _weights = [];
    private int _next;

    [Params("576x576", "576x192", "576x1536", "1536x576", "576x49152")]
    public string Shape { get; set; } = "576x1536";

    [Params(1, 4, 8, 16)]
    public int N { get; set; } = 16;

    [Params(Q8BatchKernel.DequantizedF32, Q8BatchKernel.Int16Avx512, Q8BatchKernel.Int8Avx2)]
    public Q8BatchKernel Kernel { get; set; } = Q8BatchKernel.DequantizedF32;

    [Params(true, false)]
    public bool Prefetch { get; set; } = true;

    [GlobalSetup]
    public void Setup()
    {
        if (Kernel == Q8BatchKernel.Int16Avx512 && !CpuBackend.IsAvx512Supported) throw new NotSupportedException("AVX-512 F/BW/VL is not available here");
        var (k, m) = Q8MatVecFixture.ParseShape(Shape);
        long bytes = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, k) * m;
        int copies = (int)((Q8MatVecFixture.ColdBytes + bytes - 1) / bytes);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes * copies), 64);
        var rng = new Random(42);
        var row = new float[k];
        long rowBytes = bytes / m;
        for (int r = 0; r < m; r++)
        {
            for (int i = 0; i < k; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            Q8_0.QuantizeRow(row, new Span<byte>(_data + r * rowBytes, (int)rowBytes));
        }
        for (int c = 1; c < copies; c++) Buffer.MemoryCopy(_data, _data + c * bytes, bytes, bytes);
        _backend = new CpuBackend(new CpuBackendOptions { Threads = 2, Q8Batch = Kernel, PrefetchNextChunk = Prefetch });
        _weights = new DeviceWeight[copies];
        for (int c = 0; c < copies; c++) _weights[c] = _backend.LoadWeight(new TensorView($"w{c}", GgmlType.Q8_0, [k, m], _data + c * bytes));
        var xs = new float[N * k];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)(rng.NextDouble() * 2 - 1);
        _x = _backend.Allocate(xs.Length);
        _backend.Write(_x, xs);
        _y = _backend.Allocate(N * m);
    }

    [Benchmark]
    public void Product()
    {
        var w = _weights[_next];
        _next = (_next + 1) % _weights.Length;
        _backend!.MatMul(_x!, N, [new MatMulTarget(w, _y!)]);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _backend?.Dispose();
        _backend = null;
        if (_data != null) NativeMemory.AlignedFree(_data);
        _data = null;
        GC.SuppressFinalize(this);
    }
}
