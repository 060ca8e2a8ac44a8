using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Cpu;
using Engine.Cpu.Kernels;

namespace Engine.Benchmarks.Cpu;

/// <summary>The batched Q8_0 kernels this machine can run, side by side.</summary>
public enum Q8TileKernel
{
    /// <summary>The AVX2 2 × 4 tile (<see cref="Q8_0TileKernels"/>), the path for machines without AVX-512.</summary>
    Avx2Tile2x4,

    /// <summary>AVX-512: 4 × 4 tile, blocks widened to int16, 512-bit vpmaddwd (<see cref="Q8_0Avx512TileKernels"/>).</summary>
    Int16x512Tile4x4,

    /// <summary>Chunk and activations dequantized to f32, then the f32 4 × 4 FMA tile (<see cref="Q8_0DequantizedTileKernels"/>); the activations' dequantization is timed too.</summary>
    DequantizedF32Tile4x4,

    /// <summary>The per-row kernel (<see cref="Q8_0Kernels.MatRows"/>, AVX2, four weight rows by one activation row).</summary>
    Avx2Rows,

    /// <summary>Not Q8_0: the f32 tile on an F32 matrix of the same shape (4 bytes a weight), the FMA ceiling for comparison.</summary>
    F32Tile4x4,
}

/// <summary>
/// One thread, one batched Q8_0 product <c>Y [N, M] = X [N, K] · Wᵀ</c> with W hot in L2/L3, run by each kernel
/// variant in 64-row chunks as <see cref="CpuBackend"/> hands them out. Shapes are SmolLM2-135M's ffn_up ("576x1536")
/// and ffn_down ("1536x576") and MiniLM's intermediate ("384x1536"); N = 16 is the 16-stream decode step, 256 about an
/// encoder batch. The GMAC/s column is K·M·N multiply-adds per second of the fastest iteration (Min): on the shared
/// 2-core machine the mean mostly measures the neighbours.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*Q8TileKernel*' --job short</c>.
/// </summary>
[Config(typeof(Q8TileColumnsConfig))]
[MinColumn]
public unsafe class Q8TileKernelBenchmarks : IDisposable
{
    private const int ChunkRows = 64;

    private byte* _w;     // [M, K/32 · 34] Q8_0 blocks
    private sbyte* _xq;   // [N, K] int8
    private float* _xd;   // [N, K/32] f32
    private float* _y;    // [N, M] f32
    private float* _xf;   // [N, K] f32: dequantized activations (DequantizedF32Tile4x4) or random ones (F32Tile4x4)
    private float* _wf;   // [M, K] f32 (F32Tile4x4)
    private float* _scratch;
    private long _rowBytes;

    [Params("576x1536", "1536x576", "384x1536")]
    public string Shape { get; set; } = "576x1536";

    [Params(16, 256)]
    public int N { get; set; } = 16;

    [ParamsAllValues]
    public Q8TileKernel Kernel { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        if (Kernel == Q8TileKernel.Int16x512Tile4x4 && !Q8_0Avx512TileKernels.IsSupported)
            throw new NotSupportedException("AVX-512 F/BW/VL is not available here");
        var (k, m) = Q8MatVecFixture.ParseShape(Shape);
        _rowBytes = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, k);
        _w = (byte*)NativeMemory.AlignedAlloc((nuint)(_rowBytes * m), 64);
        _xq = (sbyte*)NativeMemory.AlignedAlloc((nuint)(N * k), 64);
        _xd = (float*)NativeMemory.AlignedAlloc((nuint)(N * (k / 32) * 4), 64);
        _y = (float*)NativeMemory.AlignedAlloc((nuint)(N * m * 4), 64);
        _xf = (float*)NativeMemory.AlignedAlloc((nuint)((long)N * k * 4), 64);
        _wf = (float*)NativeMemory.AlignedAlloc((nuint)((long)m * k * 4), 64);
        long scratch = new[]
        {
            Q8_0Avx512TileKernels.ScratchFloats(ChunkRows, k), Q8_0TileKernels.ScratchFloats(ChunkRows, k), Q8_0DequantizedTileKernels.ScratchFloats(ChunkRows, k),
        }.Max() + k;
        _scratch = (float*)NativeMemory.AlignedAlloc((nuint)(scratch * 4), 64);
        var rng = new Random(42);
        var row = new float[k];
        for (int r = 0; r < m; r++)
        {
            for (int i = 0; i < k; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            Q8_0.QuantizeRow(row, new Span<byte>(_w + r * _rowBytes, (int)_rowBytes));
        }
        fixed (float* x = row)
            for (int j = 0; j < N; j++)
            {
                for (int i = 0; i < k; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
                Q8_0Kernels.QuantizeRow(CpuKernelPath.Avx2, x, k, _xq + (long)j * k, _xd + (long)j * (k / 32));
                row.AsSpan().CopyTo(new Span<float>(_xf + (long)j * k, k));
            }
        for (long i = 0; i < (long)m * k; i++) _wf[i] = (float)(rng.NextDouble() * 2 - 1);
    }

    [Benchmark]
    public void Product()
    {
        var (k, m) = Q8MatVecFixture.ParseShape(Shape);
        if (Kernel == Q8TileKernel.DequantizedF32Tile4x4)
            for (int j = 0; j < N; j++) Q8_0DequantizedTileKernels.DequantizeRow(_xq + (long)j * k, _xd + (long)j * (k / 32), _xf + (long)j * k, k);
        for (int r0 = 0; r0 < m; r0 += ChunkRows)
        {
            int r1 = Math.Min(r0 + ChunkRows, m);
            switch (Kernel)
            {
                case Q8TileKernel.Avx2Tile2x4:
                    Q8_0TileKernels.MatRows(_w, _rowBytes, r0, r1, _xq, _xd, k, N, _y, m, _scratch);
                    break;
                case Q8TileKernel.Int16x512Tile4x4:
                    Q8_0Avx512TileKernels.MatRows(_w, _rowBytes, r0, r1, _xq, _xd, k, N, _y, m, _scratch);
                    break;
                case Q8TileKernel.DequantizedF32Tile4x4:
                    Q8_0DequantizedTileKernels.MatRows(_w, _rowBytes, r0, r1, _xf, k, N, _y, m, _scratch);
                    break;
                case Q8TileKernel.F32Tile4x4:
                    FloatTileKernels.MatRows(GgmlType.F32, (byte*)_wf, (long)k * 4, r0, r1, _xf, k, N, _y, m, null);
                    break;
                default:
                    Q8_0Kernels.MatRows(CpuKernelPath.Avx2, _w, _rowBytes, r0, r1, _xq, _xd, k, N, _y, m, _scratch);
                    break;
            }
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        NativeMemory.AlignedFree(_w);
        NativeMemory.AlignedFree(_xq);
        NativeMemory.AlignedFree(_xd);
        NativeMemory.AlignedFree(_y);
        NativeMemory.AlignedFree(_scratch);
        NativeMemory.AlignedFree(_xf);
        NativeMemory.AlignedFree(_wf);
        _w = null;
        GC.SuppressFinalize(this);
    }
}

/// <summary>Adds the GMAC/s column (K·M·N / mean time) to <see cref="Q8TileKernelBenchmarks"/>.</summary>
public sealed class Q8TileColumnsConfig : ManualConfig
{
    public Q8TileColumnsConfig() => AddColumn(new GmacColumn());

    private sealed class GmacColumn : IColumn
    {
        public string Id => nameof(GmacColumn);
        public string ColumnName => "GMAC/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "multiply-adds (K·M·N) per second of the fastest iteration, 10^9";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null || benchmarkCase.Parameters["Shape"] is not string shape || benchmarkCase.Parameters["N"] is not int n) return "-";
            var (k, m) = Q8MatVecFixture.ParseShape(shape);
            return ((double)k * m * n / stats.Min).ToString("F2");
        }
    }
}
