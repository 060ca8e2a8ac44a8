using System.Collections.Concurrent;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Core.Gguf;
using Engine.Cpu.Diagnostics;

namespace Engine.Benchmarks.Cpu;

/// <summary>Adds the weight-bandwidth columns to a matvec benchmark's summary.</summary>
public sealed class MatVecColumnsConfig : ManualConfig
{
    public MatVecColumnsConfig()
    {
        AddColumn(new MatVecColumn(MatVecColumn.Kind.WeightGBps));
        AddColumn(new MatVecColumn(MatVecColumn.Kind.GOps));
        AddColumn(new MatVecColumn(MatVecColumn.Kind.BandwidthFraction));
    }
}

/// <summary>
/// Derived figures of a Q8_0 matvec case, from its "Shape" ("KxM") and "Threads" (default 1) parameters and
/// the mean time: GB/s of weight bytes read (34 bytes per 32 weights), GOP/s (2·K·M), and that GB/s over the
/// read bandwidth <see cref="MemoryBandwidthProbe"/> measures in this (host) process with as many threads.
/// </summary>
public sealed class MatVecColumn(MatVecColumn.Kind kind) : IColumn
{
    public enum Kind { WeightGBps, GOps, BandwidthFraction }

    private static readonly ConcurrentDictionary<int, double> Bandwidth = new();

    public string Id => $"{nameof(MatVecColumn)}.{kind}";
    public string ColumnName => kind switch
    {
        Kind.WeightGBps => "Weights GB/s",
        Kind.GOps => "GOP/s",
        _ => "of read BW",
    };
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => (int)kind;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => kind switch
    {
        Kind.WeightGBps => "Q8_0 weight bytes read per second (10^9 B/s)",
        Kind.GOps => "2·K·M operations per second (10^9)",
        _ => "Weights GB/s over the best read bandwidth MemoryBandwidthProbe measured with as many threads (512 MiB buffer)",
    };

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Parameters["Shape"] is not string shape) return "-";
        var (cols, rows) = Q8MatVecFixture.ParseShape(shape);
        double ns = stats.Mean;
        double weightBytes = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, cols) * rows;
        double gbps = weightBytes / ns;
        int threads = benchmarkCase.Parameters.Items.Any(p => p.Name == "Threads") ? (int)benchmarkCase.Parameters["Threads"]! : 1;
        return kind switch
        {
            Kind.WeightGBps => gbps.ToString("F2"),
            Kind.GOps => (2.0 * rows * cols / ns).ToString("F2"),
            _ => (gbps / Bandwidth.GetOrAdd(threads, t => MemoryBandwidthProbe.MeasureReadGBps(t))).ToString("P0"),
        };
    }
}
