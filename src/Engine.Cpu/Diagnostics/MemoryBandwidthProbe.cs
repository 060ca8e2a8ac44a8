using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Cpu.Threading;

namespace Engine.Cpu.Diagnostics;

/// <summary>
/// Measures memory read bandwidth the way a decode step uses it: <c>threads</c> threads (the caller
/// included, released by the same kind of pool as <see cref="CpuBackend"/>) stream through a buffer far
/// larger than the last-level cache, summing 256-bit vectors. The buffer is read in slices of
/// <see cref="SliceBytes"/> (each slice shared by the threads in 1 MiB pieces, each slice timed on its own, each cold because
/// the rest of the buffer was read since), over a few passes, and the best slice rate is reported: other
/// work on a shared machine only ever slows a slice down, and a slice of a few milliseconds usually runs
/// between two preemptions. Benchmarks divide their achieved weight bytes per second by this figure to
/// print the fraction of bandwidth reached.
/// </summary>
public static unsafe class MemoryBandwidthProbe
{
    /// <summary>Default buffer: 512 MiB, sixteen times a 32 MiB L3 (the EPYC machines of DESIGN.md).</summary>
    public const long DefaultBytes = 512L << 20;

    /// <summary>Default number of timed passes over the buffer (after one untimed pass).</summary>
    public const int DefaultPasses = 3;

    /// <summary>Bytes read per timed slice: 32 MiB, a few milliseconds of reading.</summary>
    public const long SliceBytes = 32L << 20;

    /// <summary>Best read bandwidth in GB/s (10^9 bytes per second) over <paramref name="passes"/> passes.</summary>
    public static double MeasureReadGBps(int threads, long bytes = DefaultBytes, int passes = DefaultPasses)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(passes, 1);
        long slice = SliceBytes;
        bytes = Math.Max(bytes / slice, 2) * slice;
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        try
        {
            // Non-zero contents, written once so every page is backed before timing.
            new Span<byte>(buffer, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            for (long off = int.MaxValue; off < bytes; off += int.MaxValue)
                new Span<byte>(buffer + off, (int)Math.Min(bytes - off, int.MaxValue)).Fill(1);
            using var pool = new WorkerPool(threads, spinMicroseconds: 1000);
            var job = new ReadJob(slice);
            double best = 0;
            for (int p = 0; p <= passes; p++)
            {
                for (long off = 0; off < bytes; off += slice)
                {
                    job.Start = buffer + off;
                    job.Next = 0;
                    long start = Stopwatch.GetTimestamp();
                    pool.Run(job);
                    double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    if (p > 0) best = Math.Max(best, slice / seconds / 1e9); // pass 0 warms up
                }
            }
            if (job.Sink == 0x5eed) Console.Write(""); // keeps the sums observable
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Reads one slice in 1 MiB pieces taken from a shared counter.</summary>
    private sealed class ReadJob(long sliceBytes) : WorkerPool.Job
    {
        private const long Piece = 1L << 20;
        public long Sink;
        public byte* Start;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            long pieces = sliceBytes / Piece;
            long sum = 0;
            int k;
            while ((k = Interlocked.Increment(ref Next) - 1) < pieces)
            {
                var p = (Vector256<long>*)(Start + k * Piece);
                const long count = Piece / 32;
                Vector256<long> a0 = default, a1 = default, a2 = default, a3 = default;
                for (long i = 0; i < count; i += 4)
                {
                    a0 += p[i];
                    a1 += p[i + 1];
                    a2 += p[i + 2];
                    a3 += p[i + 3];
                }
                sum += Vector256.Sum(a0 + a1 + a2 + a3);
            }
            Interlocked.Add(ref Sink, sum);
        }
    }
}
