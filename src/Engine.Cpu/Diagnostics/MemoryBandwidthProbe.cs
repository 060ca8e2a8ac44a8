using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Cpu.Threading;

namespace Engine.Cpu.Diagnostics;

/// <summary>
/// Measures memory read bandwidth the way a decode step uses it: <c>threads</c> threads (the caller
/// included, released by the same kind of pool as <see cref="CpuBackend"/>) each stream through their share
/// of a buffer far larger than the last-level cache, summing 256-bit vectors. The best of a few passes is
/// reported, since other work on a shared machine only ever slows a pass down. Benchmarks divide their
/// achieved weight bytes per second by this figure to print the fraction of bandwidth reached.
/// </summary>
public static unsafe class MemoryBandwidthProbe
{
    /// <summary>Default buffer: 512 MiB, sixteen times a 32 MiB L3 (the EPYC machines of DESIGN.md).</summary>
    public const long DefaultBytes = 512L << 20;

    /// <summary>Default number of timed passes (after one untimed pass that faults the pages in).</summary>
    public const int DefaultPasses = 5;

    /// <summary>Best read bandwidth in GB/s (10^9 bytes per second) over <paramref name="passes"/> passes.</summary>
    public static double MeasureReadGBps(int threads, long bytes = DefaultBytes, int passes = DefaultPasses)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(passes, 1);
        const long Chunk = 4096; // each thread reads whole pages
        bytes = Math.Max(bytes / (Chunk * threads) * (Chunk * threads), Chunk * threads);
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        try
        {
            // Non-zero contents, written once so every page is backed before timing.
            new Span<byte>(buffer, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            for (long off = int.MaxValue; off < bytes; off += int.MaxValue)
                new Span<byte>(buffer + off, (int)Math.Min(bytes - off, int.MaxValue)).Fill(1);
            using var pool = new WorkerPool(threads, spinMicroseconds: 1000);
            var job = new ReadJob(buffer, bytes / threads);
            pool.Run(job); // warm-up pass
            double best = 0;
            for (int p = 0; p < passes; p++)
            {
                long start = Stopwatch.GetTimestamp();
                pool.Run(job);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                best = Math.Max(best, bytes / seconds / 1e9);
            }
            if (job.Sink == 0x5eed) Console.Write(""); // keeps the sums observable
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private sealed class ReadJob(byte* buffer, long perThread) : WorkerPool.Job
    {
        public long Sink;

        public override void Execute(int worker, int workers)
        {
            var p = (Vector256<long>*)(buffer + worker * perThread);
            long count = perThread / Vector256<byte>.Count;
            Vector256<long> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i + 4 <= count; i += 4)
            {
                a0 += p[i];
                a1 += p[i + 1];
                a2 += p[i + 2];
                a3 += p[i + 3];
            }
            Interlocked.Add(ref Sink, Vector256.Sum(a0 + a1 + a2 + a3));
        }
    }
}
