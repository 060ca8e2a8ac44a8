using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Engine.Cli.Commands;

/// <summary>
/// Waits for a <see cref="Stopwatch"/> timestamp without holding a core. The load generator shares the
/// machine with the server it measures (2 cores here): spinning between requests 0.5 ms apart took one
/// of them. On Linux the thread sleeps in <c>nanosleep</c> (wakes within the kernel's timer slack, about
/// 50–100 µs late); elsewhere in <see cref="Thread.Sleep(int)"/> while a millisecond or more remains,
/// then yields. Lateness is not hidden: the load generator measures each latency from the scheduled time.
/// </summary>
internal static unsafe partial class LoadgenPacer
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "nanosleep")]
    private static partial int NanoSleep(TimeSpec* request, TimeSpec* remaining);

    /// <summary>True where sub-millisecond sleeps are available (Linux nanosleep).</summary>
    public static bool IsPrecise { get; } = OperatingSystem.IsLinux() && TrySleepNanoseconds(1_000);

    /// <summary>Returns at or shortly after <paramref name="timestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public static void Until(long timestamp)
    {
        while (true)
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= timestamp) return;
            long nanoseconds = (long)((timestamp - now) * (1e9 / Stopwatch.Frequency));
            if (IsPrecise) TrySleepNanoseconds(nanoseconds);
            else if (nanoseconds >= 1_000_000) Thread.Sleep((int)(nanoseconds / 1_000_000));
            else Thread.Yield();
        }
    }

    private static bool TrySleepNanoseconds(long nanoseconds)
    {
        try
        {
            var request = new TimeSpec { Seconds = nanoseconds / 1_000_000_000, Nanoseconds = nanoseconds % 1_000_000_000 };
            TimeSpec remaining;
            return NanoSleep(&request, &remaining) is 0 or -1; // -1: interrupted by a signal; the caller's loop sleeps again
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }
}
