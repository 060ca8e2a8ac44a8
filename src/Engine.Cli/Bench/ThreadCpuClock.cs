using System.Runtime.InteropServices;

namespace Engine.Cli.Bench;

/// <summary>
/// CPU time consumed by the calling thread (Linux <c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>).
/// On a shared machine a thread waiting for a core loses wall time but not CPU time, so with one
/// compute thread (both engines then compute on the calling thread) decode tokens per CPU second
/// estimates the speed on a quiet machine; memory contention from other work still shows.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3; // CLOCK_THREAD_CPUTIME_ID, linux/time.h

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>True where the clock can be read (Linux).</summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() && TryRead(out _);

    /// <summary>Seconds of CPU time of the calling thread, or NaN where unsupported.</summary>
    public static double Now() => IsSupported && TryRead(out double s) ? s : double.NaN;

    private static bool TryRead(out double seconds)
    {
        seconds = 0;
        try
        {
            if (ClockGetTime(ClockThreadCpuTimeId, out var t) != 0) return false;
            seconds = t.Seconds + t.Nanoseconds * 1e-9;
            return true;
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
