using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Cpu.Threading;

/// <summary>
/// A persistent pool of compute threads, released once per op by a cheap barrier, in the manner of
/// llama.cpp's ggml thread pool: the calling thread is worker 0 and takes part in every job, the other
/// <c>Count - 1</c> threads spin for a short while between jobs (ops of a decode step follow each other
/// within microseconds) and then block on a monitor so an idle backend costs nothing.
/// DESIGN.md: a fork-join of tens of microseconds per call (Parallel.For) eats a large share of a token,
/// so no Task or Parallel machinery is used here, and nothing is allocated per job.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    /// <summary>A unit of parallel work: each worker runs <see cref="Execute"/> once with its index.</summary>
    internal abstract class Job
    {
        /// <summary>Runs this worker's share; <paramref name="worker"/> is in <c>[0, workers)</c>.</summary>
        public abstract void Execute(int worker, int workers);
    }

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly long _spinTicks;
    private Job? _job;
    private int _generation; // bumped once per dispatched job (and on dispose)
    private int _pending;    // workers (other than the caller) still running the current job
    private int _sleepers;   // workers blocked in Monitor.Wait
    private volatile bool _stopping;
    private Exception? _error;

    public WorkerPool(int threads, int spinMicroseconds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(spinMicroseconds);
        Count = threads;
        _spinTicks = spinMicroseconds * Stopwatch.Frequency / 1_000_000;
        _threads = new Thread[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"engine-cpu-{index}" };
            _threads[i].Start();
        }
    }

    /// <summary>Total workers, the calling thread included.</summary>
    public int Count { get; }

    /// <summary>Runs <paramref name="job"/> on every worker and returns when all are done. Not reentrant.</summary>
    public void Run(Job job)
    {
        if (_threads.Length == 0)
        {
            job.Execute(0, 1);
            return;
        }
        ObjectDisposedException.ThrowIf(_stopping, this);
        _job = job;
        _error = null;
        Volatile.Write(ref _pending, _threads.Length);
        Interlocked.Increment(ref _generation); // full fence: the job is visible before the release
        if (Volatile.Read(ref _sleepers) > 0)
            lock (_gate) Monitor.PulseAll(_gate);

        Exception? mine = null;
        try { job.Execute(0, Count); }
        catch (Exception e) { mine = e; }

        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
        _job = null;
        if (mine is not null) ExceptionDispatchInfo.Throw(mine);
        if (_error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    private void WorkerLoop(int index)
    {
        int seen = 0;
        while (true)
        {
            int g = WaitForGeneration(seen);
            if (_stopping) return;
            seen = g;
            try { _job!.Execute(index, Count); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>Spins up to the spin budget for a new generation, then blocks until one comes.</summary>
    private int WaitForGeneration(int seen)
    {
        int g = Volatile.Read(ref _generation);
        if (g != seen) return g;
        long start = Stopwatch.GetTimestamp();
        for (int i = 1; ; i++)
        {
            Thread.SpinWait(8);
            g = Volatile.Read(ref _generation);
            if (g != seen) return g;
            if ((i & 63) == 0 && Stopwatch.GetTimestamp() - start > _spinTicks) break;
        }
        lock (_gate)
        {
            // Dekker handshake with Run: our sleeper count is published (full fence) before we re-read the
            // generation, and Run bumps the generation (full fence) before it reads the sleeper count, so
            // either we see the new generation here or Run sees us and pulses.
            Interlocked.Increment(ref _sleepers);
            while ((g = Volatile.Read(ref _generation)) == seen && !_stopping) Monitor.Wait(_gate);
            Interlocked.Decrement(ref _sleepers);
        }
        return g;
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        Interlocked.Increment(ref _generation);
        lock (_gate) Monitor.PulseAll(_gate);
        foreach (var t in _threads) t.Join();
    }
}
