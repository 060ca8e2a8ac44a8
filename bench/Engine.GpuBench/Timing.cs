using System.Diagnostics;

namespace Engine.GpuBench;

/// <summary>Median wall time of a device operation: warm-up, then batches of launches closed by a synchronize.</summary>
internal static class Timing
{
    /// <summary>Smoke mode (the CPU accelerator): one call per batch, three batches, one warm-up.</summary>
    public static bool Quick { get; set; }

    /// <summary>Seconds per call of <paramref name="op"/> (median over <paramref name="batches"/> batches of <paramref name="perBatch"/> calls).</summary>
    public static double Median(Action op, Action sync, int perBatch, int batches = 7, int warmup = 3)
    {
        if (Quick) (perBatch, batches, warmup) = (1, 3, 1);
        for (int i = 0; i < warmup; i++) op();
        sync();
        var times = new double[batches];
        for (int b = 0; b < batches; b++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < perBatch; i++) op();
            sync();
            times[b] = Stopwatch.GetElapsedTime(start).TotalSeconds / perBatch;
        }
        Array.Sort(times);
        return times[batches / 2];
    }

    public static string Us(double seconds) => $"{seconds * 1e6:F1} µs";

    public static string GBs(double bytes, double seconds) => $"{bytes / seconds / 1e9:F1} GB/s";

    public static string Pct(double part, double whole) => whole > 0 ? $"{100 * part / whole:F0}%" : "";
}
